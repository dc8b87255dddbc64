"""The files of one pod's directory: the contract between the runtime and its shim.

``root/<uid>/`` holds:

- ``spec.json``: the launch spec, with env values left out (they reach the shim on its
  stdin, so Secret values never land on disk);
- ``output.log``: the process's stdout and stderr, appended;
- ``shim.log``: the shim's own diagnostics (never env values);
- ``shim.lock``: flock-ed by the live shim for its whole life, so "is the shim alive?"
  needs no pid (and cannot be fooled by a reused one);
- ``shim.pid``: the shim's pid, to SIGKILL a shim that does not end when asked;
- ``child.pid``: the process's pid, which is also its process group id;
- ``started``: when the process started (ISO 8601), written after ``child.pid``;
- ``stop``: a stop request, the grace period in seconds (the shim polls for it);
- ``cgroup``: the pod's cgroup directory, when memory is enforced by one;
- ``status.json``: how the process ended, written atomically by the shim (exitCode,
  reason, message, startedAt, finishedAt).

Keep in sync with the shim (the writer) and the runtime (the reader). Standard library
only: the shim imports this module without importing ``cnai``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from .exits import ExitStatus

# A uid names a directory: no separators, no dot-dot (Kubernetes uids are UUIDs).
_SAFE_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$")


def check_uid(uid: str) -> str:
    """``uid`` if it is safe as a directory name; ValueError otherwise."""
    if not _SAFE_UID.match(uid):
        raise ValueError(f"pod uid {uid!r} is not usable as a directory name")
    return uid


def write_atomic(path: Path, text: str, *, durable: bool = False) -> None:
    """Write ``text`` so that readers see the old file or the whole new one (mode 0600).

    ``durable`` also fsyncs it, for what must survive a machine crash (the exit status);
    the runtime's own small writes skip that, as they happen on the event loop.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        if durable:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return None


class PodDir:
    """One pod's directory and typed access to its files."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spec = path / "spec.json"
        self.log = path / "output.log"
        self.shim_log = path / "shim.log"
        self.lock = path / "shim.lock"
        self.shim_pid = path / "shim.pid"
        self.child_pid = path / "child.pid"
        self.started = path / "started"
        self.stop = path / "stop"
        self.cgroup = path / "cgroup"
        self.status = path / "status.json"

    @property
    def uid(self) -> str:
        return self.path.name

    def exists(self) -> bool:
        return self.path.is_dir()

    def create(self) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- readers -------------------------------------------------------------------

    def read_status(self) -> ExitStatus | None:
        text = _read_text(self.status)
        return ExitStatus.from_json(json.loads(text)) if text else None

    def read_pid(self, path: Path) -> int | None:
        text = _read_text(path)
        return int(text) if text and text.strip().isdigit() else None

    def read_started(self) -> datetime | None:
        text = _read_text(self.started)
        return datetime.fromisoformat(text.strip()) if text else None

    def read_stop(self) -> float | None:
        text = _read_text(self.stop)
        try:
            return max(0.0, float(text)) if text else None
        except ValueError:
            return 0.0

    def read_cgroup(self) -> Path | None:
        text = _read_text(self.cgroup)
        return Path(text.strip()) if text else None

    def shim_alive(self) -> bool:
        """Whether a shim holds this pod's lock now."""
        return lock_held(self.lock)

    # -- writers -------------------------------------------------------------------

    def write_spec(self, spec: dict[str, Any]) -> None:
        write_atomic(self.spec, json.dumps(spec, indent=2) + "\n")

    def write_status(self, status: ExitStatus) -> None:
        write_atomic(self.status, json.dumps(status.to_json(), indent=2) + "\n", durable=True)

    def write_value(self, path: Path, value: object) -> None:
        write_atomic(path, f"{value}\n")

    def request_stop(self, grace_seconds: float) -> None:
        """Ask the shim to stop the process; a shorter grace than an earlier one wins."""
        earlier = self.read_stop()
        grace = grace_seconds if earlier is None else min(earlier, grace_seconds)
        self.write_value(self.stop, max(0.0, grace))


def acquire_lock(path: Path, wait_seconds: float) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None if another holder keeps it.

    Retries for ``wait_seconds``: the runtime's liveness probe holds the lock for an
    instant, which must not make a starting shim give up.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                os.close(fd)
                return None
            time.sleep(0.01)


def lock_held(path: Path) -> bool:
    """Whether some process holds the flock on ``path`` (probes without waiting)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
