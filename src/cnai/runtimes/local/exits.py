"""How a pod's process ended, in Kubernetes' terms: exit code, reason and message.

Pure functions over what the shim saw. Exit codes follow Kubernetes: a death by signal N
is ``128 + N`` (137 for SIGKILL). Reasons: Completed (0), Error (non-zero), OOMKilled
(over its memory limit), Killed (stopped on request and SIGKILLed after the grace
period), StartError (the process could not be started). Standard library only.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Exit codes for processes that never ran, as a shell reports them.
NOT_FOUND_EXIT = 127
NOT_EXECUTABLE_EXIT = 126
START_FAILED_EXIT = 128


@dataclass(frozen=True)
class ExitStatus:
    """What ``status.json`` records."""

    exit_code: int | None
    reason: str
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "message": self.message,
            "startedAt": self.started_at.isoformat() if self.started_at else None,
            "finishedAt": self.finished_at.isoformat() if self.finished_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExitStatus:
        def when(key: str) -> datetime | None:
            value = data.get(key)
            return datetime.fromisoformat(value) if value else None

        code = data.get("exitCode")
        return cls(
            exit_code=int(code) if code is not None else None,
            reason=str(data.get("reason", "")),
            message=str(data.get("message", "")),
            started_at=when("startedAt"),
            finished_at=when("finishedAt"),
        )


def exit_code_of(returncode: int) -> int:
    """A Popen return code (negative for a signal) as Kubernetes reports it."""
    return 128 - returncode if returncode < 0 else returncode


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def classify(
    returncode: int,
    *,
    oom_message: str | None = None,
    killed_on_stop: bool = False,
    grace_seconds: float | None = None,
) -> tuple[int, str, str]:
    """(exit code, reason, message) for a process that ran and ended with ``returncode``."""
    code = exit_code_of(returncode)
    if oom_message is not None:
        return code, "OOMKilled", oom_message
    if killed_on_stop and returncode == -signal.SIGKILL:
        grace = f"{grace_seconds:g}s" if grace_seconds is not None else "the"
        return code, "Killed", f"stopped: SIGKILL after a {grace} grace period"
    if code == 0:
        return 0, "Completed", ""
    if returncode < 0:
        return code, "Error", f"terminated by {_signal_name(-returncode)}"
    return code, "Error", ""


def start_error(exc: BaseException, command: str) -> tuple[int, str]:
    """(exit code, message) for a process that could not be started."""
    if isinstance(exc, FileNotFoundError):
        where = " in PATH" if "/" not in command else ""
        return NOT_FOUND_EXIT, f"executable {command!r} not found{where}"
    if isinstance(exc, PermissionError):
        return NOT_EXECUTABLE_EXIT, f"{command!r} is not executable: permission denied"
    return START_FAILED_EXIT, f"cannot start {command!r}: {exc}"
