"""`cnai down` waits for the platform's process: a zombie must count as stopped."""

from __future__ import annotations

import subprocess
import sys
import time

from cnai.cli.platform_cmds import _alive


def test_a_running_process_is_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert _alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def test_an_exited_but_unreaped_process_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    # Not reaped by us (no wait yet): it stays a zombie, which kill(pid, 0) still finds.
    while _alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(proc.pid)
    proc.wait()
    assert not _alive(proc.pid)
