"""Exit status to Kubernetes' exit code, reason and message."""

from __future__ import annotations

import pytest

from cnai.runtimes.local.exits import ExitStatus, classify, start_error


@pytest.mark.parametrize(
    ("returncode", "kwargs", "expected"),
    [
        pytest.param(0, {}, (0, "Completed", ""), id="zero-completed"),
        pytest.param(3, {}, (3, "Error", ""), id="non-zero-error"),
        pytest.param(-15, {}, (143, "Error", "terminated by SIGTERM"), id="sigterm-143"),
        pytest.param(
            -9,
            {"killed_on_stop": True, "grace_seconds": 2.0},
            (137, "Killed", "stopped: SIGKILL after a 2s grace period"),
            id="sigkilled-on-stop-killed",
        ),
        pytest.param(
            0, {"killed_on_stop": True}, (0, "Completed", ""), id="exited-before-sigkill-completed"
        ),
        pytest.param(-9, {"oom_message": "over"}, (137, "OOMKilled", "over"), id="oom-wins-137"),
    ],
)
def test_classify(
    returncode: int, kwargs: dict[str, object], expected: tuple[int, str, str]
) -> None:
    assert classify(returncode, **kwargs) == expected


@pytest.mark.parametrize(
    ("exc", "command", "code"),
    [
        pytest.param(FileNotFoundError(), "nope", 127, id="not-found-127"),
        pytest.param(PermissionError(), "/etc/hostname", 126, id="not-executable-126"),
        pytest.param(OSError("boom"), "x", 128, id="other-128"),
    ],
)
def test_start_error(exc: OSError, command: str, code: int) -> None:
    got, message = start_error(exc, command)
    assert got == code
    assert repr(command) in message


def test_exit_status_round_trips_through_json() -> None:
    from datetime import UTC, datetime

    status = ExitStatus(3, "Error", "m", datetime(2026, 1, 1, tzinfo=UTC), datetime.now(UTC))
    assert ExitStatus.from_json(status.to_json()) == status
