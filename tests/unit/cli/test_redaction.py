"""Secret values never reach any output format unless --reveal asks for them."""

from __future__ import annotations

import base64
import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from cnai.cli.describe import describe_lines
from cnai.cli.printers import as_list, columns_of, render, row, table
from cnai.cli.redaction import Reveal, present

PLAIN = "hunter2-very-secret"
ENCODED = base64.b64encode(PLAIN.encode()).decode()
NOW = datetime(2025, 6, 1, tzinfo=UTC)


def secret(**extra: Any) -> dict[str, Any]:
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "app"},
        "type": "Opaque",
        "data": {"password": ENCODED},
        **extra,
    }


SECRET_COLUMNS = columns_of(
    {
        "columns": [
            {"name": "TYPE", "path": "type"},
            {"name": "DATA", "path": "data", "type": "count"},
        ]
    },
    wide=True,
)


def outputs(obj: dict[str, Any], reveal: Reveal) -> dict[str, str]:
    """Every rendering of ``obj`` the CLI can produce, after the redaction gate."""
    shown = present(obj, reveal)
    return {
        "yaml": render(shown, "yaml"),
        "json": render(shown, "json"),
        "list-yaml": render(present(as_list([obj]), reveal), "yaml"),
        "table": "\n".join(table([row(shown, SECRET_COLUMNS, True, NOW)])),
        "describe": "\n".join(describe_lines(shown, NOW)),
    }


@pytest.mark.parametrize("fmt", ["yaml", "json", "list-yaml", "table", "describe"])
def test_hidden_by_default_in_every_format(fmt: str) -> None:
    text = outputs(secret(), Reveal.HIDDEN)[fmt]
    assert PLAIN not in text
    assert ENCODED not in text


@pytest.mark.parametrize(
    ("reveal", "fmt", "expected"),
    [
        pytest.param(Reveal.STORED, "yaml", ENCODED, id="reveal-shows-base64-as-stored-in-yaml"),
        pytest.param(Reveal.STORED, "json", ENCODED, id="reveal-shows-base64-as-stored-in-json"),
        pytest.param(Reveal.STORED, "list-yaml", ENCODED, id="reveal-reaches-list-items"),
        pytest.param(Reveal.DECODED, "describe", PLAIN, id="describe-reveal-decodes"),
    ],
)
def test_shown_when_revealed(reveal: Reveal, fmt: str, expected: str) -> None:
    assert expected in outputs(secret(), reveal)[fmt]


def test_redacted_form_keeps_keys_and_sizes() -> None:
    shown = present(secret(stringData={"token": "abc"}))
    assert shown["data"] == {"password": f"<redacted: {len(PLAIN)} bytes>"}
    assert shown["stringData"] == {"token": "<redacted: 3 bytes>"}


def test_malformed_base64_is_still_hidden() -> None:
    shown = present(secret(data={"k": "not base64!"}))
    assert "not base64" not in str(shown)


def test_other_kinds_and_the_input_are_untouched() -> None:
    original = secret()
    kept = copy.deepcopy(original)
    present(original)
    assert original == kept
    config = {"kind": "ConfigMap", "data": {"k": "visible"}}
    assert present(config) == config
