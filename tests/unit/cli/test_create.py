"""Building a Secret's data from --from-literal and --from-file."""

from __future__ import annotations

import base64
from pathlib import Path

import click
import pytest

from cnai.cli.create import secret_data


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_literals_and_files_become_base64(tmp_path: Path) -> None:
    blob = tmp_path / "cert.pem"
    blob.write_bytes(b"\x00\xffbinary")
    data = secret_data(["user=admin", "empty=", "eq=a=b"], [str(blob), f"key={blob}"])
    assert data == {
        "user": b64(b"admin"),
        "empty": b64(b""),
        "eq": b64(b"a=b"),
        "cert.pem": b64(b"\x00\xffbinary"),
        "key": b64(b"\x00\xffbinary"),
    }


@pytest.mark.parametrize(
    ("literals", "files"),
    [
        pytest.param(["novalue"], [], id="literal-without-equals"),
        pytest.param(["=v"], [], id="literal-without-key"),
        pytest.param(["a=1", "a=2"], [], id="duplicate-key"),
        pytest.param([], ["/nonexistent/file"], id="missing-file"),
    ],
)
def test_bad_input_is_a_usage_error(literals: list[str], files: list[str]) -> None:
    with pytest.raises(click.UsageError):
        secret_data(literals, files)
