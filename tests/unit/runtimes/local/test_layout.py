"""The pod directory: safe uids, stop requests, the shim's liveness lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cnai.runtimes.local.layout import PodDir, acquire_lock, check_uid, lock_held


@pytest.mark.parametrize(
    "uid",
    [
        pytest.param("../etc", id="parent-dir"),
        pytest.param("a/b", id="separator"),
        pytest.param("", id="empty"),
        pytest.param(".hidden", id="leading-dot"),
    ],
)
def test_unsafe_uids_are_refused(uid: str) -> None:
    with pytest.raises(ValueError, match="directory name"):
        check_uid(uid)


def test_a_shorter_grace_wins(tmp_path: Path) -> None:
    pod = PodDir(tmp_path)
    assert pod.read_stop() is None
    pod.request_stop(30)
    pod.request_stop(60)
    assert pod.read_stop() == 30
    pod.request_stop(1.5)
    assert pod.read_stop() == 1.5


def test_the_lock_tells_whether_a_shim_holds_it(tmp_path: Path) -> None:
    lock = tmp_path / "shim.lock"
    assert not lock_held(lock)
    fd = acquire_lock(lock, 0)
    assert fd is not None
    try:
        assert lock_held(lock)
        assert acquire_lock(lock, 0) is None  # a second shim gives up
    finally:
        os.close(fd)
    assert not lock_held(lock)
