"""`cnai up --runtime ray` without an address: this machine's Ray head, reused while it
answers, else started with `ray start --head` (faked here: no Ray cluster starts)."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from cnai.runtimes.ray import head as ray_head
from cnai.runtimes.ray.head import RayHeadError, ensure_head


@pytest.fixture
def listening() -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield f"127.0.0.1:{s.getsockname()[1]}"


def fake_ray(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    """A `ray` command that records its arguments and runs ``script``."""
    exe = tmp_path / "ray"
    exe.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\n{script}\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(ray_head, "ray_executable", lambda: str(exe))
    return tmp_path / "args"


def test_a_recorded_head_that_answers_is_reused(
    tmp_path: Path, listening: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = fake_ray(tmp_path, monkeypatch, "exit 1")
    (tmp_path / "ray-state").mkdir()
    (tmp_path / "ray-state" / "head.json").write_text(json.dumps({"address": listening}))
    assert ensure_head(tmp_path / "ray-state") == listening
    assert not args.exists()  # nothing started


def test_otherwise_a_head_is_started_and_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = fake_ray(tmp_path, monkeypatch, "exit 0")
    address = ensure_head(tmp_path / "ray-state")
    port = address.rpartition(":")[2]
    assert address.startswith("127.0.0.1:")
    assert args.read_text().split()[:3] == ["start", "--head", f"--port={port}"]
    saved = json.loads((tmp_path / "ray-state" / "head.json").read_text())
    assert saved == {"address": address}


def test_a_head_that_fails_to_start_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ray(tmp_path, monkeypatch, "echo 'port in use' >&2; exit 3")
    with pytest.raises(RayHeadError, match=r"(?s)failed \(exit 3\).*port in use"):
        ensure_head(tmp_path / "ray-state")
