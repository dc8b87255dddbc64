"""SIGKILL the platform while pods run: after a restart on the same home they are adopted.

Each test owns its platform (the session one must not die). Pods wait for a "go" file
the test creates, so "the process is still running when the platform dies" and "the
process ends while the platform is down" are arranged, not hoped for.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import RunningPlatform, start_platform, unique, wait_until
from workloads import JobBuilder, PodBuilder, job_pods, processes_with

from cnai import Client
from cnai.batch.api import Job, JobPhase
from cnai.core.errors import NotFound
from cnai.core.kinds import Event, Namespace
from cnai.core.pods import Pod, PodPhase

WAIT_S = 60.0
NAMESPACE = "adopt"


def _wait_for(go: Path) -> str:
    """Pod code that blocks until ``go`` exists (a minute at most, should the test fail)."""
    return f"""
        import os, time
        deadline = time.monotonic() + 60
        while not os.path.exists({str(go)!r}) and time.monotonic() < deadline:
            time.sleep(0.05)
    """


def _program(*parts: str) -> str:
    """One pod program from pieces indented each their own way."""
    return "\n".join(textwrap.dedent(part).strip() for part in parts) + "\n"


@dataclass
class Restartable:
    """A platform of the test's own, which the test may crash and start again."""

    home: Path
    running: RunningPlatform

    def client(self) -> Client:
        return self.running.client()

    def halt(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL by default: no shutdown code runs, as when the OOM killer strikes."""
        self.running.proc.send_signal(sig)
        self.running.proc.wait(timeout=30)

    def restart(self) -> None:
        self.running = start_platform(self.home, port=self.running.port)


@pytest.fixture
def own(tmp_path: Path) -> Iterator[Restartable]:
    platform = Restartable(tmp_path / "home", start_platform(tmp_path / "home"))
    with platform.client() as c:
        c.create(Namespace.new(NAMESPACE))
    yield platform
    platform.running.stop()


def _wait_pod_phase(own: Restartable, name: str, done: bool) -> Pod:
    """Wait until the pod is Running (``done`` False) or finished (True); return it."""

    def reached() -> bool:
        with own.client() as c:
            try:
                phase = c.get(Pod, name, NAMESPACE).status.phase
            except NotFound:  # not created yet (the job's token Secret comes first)
                return False
        return phase.terminal if done else phase is PodPhase.RUNNING

    wait_until(reached, WAIT_S, f"pod {name} to be {'finished' if done else 'Running'}")
    with own.client() as c:
        return c.get(Pod, name, NAMESPACE)


def _started_events(client: Client, pod: Pod) -> int:
    events = client.list(
        Event, NAMESPACE, field_selector=f"involvedObject.uid={pod.metadata.uid}"
    ).items
    return sum(e.count for e in events if e.reason == "Started")


@pytest.mark.parametrize(
    "sig",
    [
        pytest.param(signal.SIGKILL, id="sigkilled-platform"),
        pytest.param(signal.SIGTERM, id="cleanly-stopped-platform-leaves-pods-running"),
    ],
)
def test_running_job_pod_is_adopted_after_a_restart_not_started_again(
    own: Restartable, mark: str, tmp_path: Path, sig: int
) -> None:
    starts, go = tmp_path / "starts.txt", tmp_path / "go"
    code = _program(
        f"""
        with open({str(starts)!r}, "a") as f:
            f.write("start\\n")
        """,
        _wait_for(go),
        'print("done")',
    )
    name = unique("adopt")
    with own.client() as c:
        c.create(JobBuilder(name, NAMESPACE).runs(code, mark).build())
    _wait_pod_phase(own, f"{name}-0", done=False)
    wait_until(lambda: starts.exists(), WAIT_S, "the pod to write its start line")

    own.halt(sig)
    assert processes_with(mark) != []  # the pod outlives the platform
    own.restart()
    go.touch()

    with own.client() as c:
        wait_until(
            lambda: c.get(Job, name, NAMESPACE).status.phase is JobPhase.SUCCEEDED,
            WAIT_S,
            "the adopted job to succeed",
        )
        job = c.get(Job, name, NAMESPACE)
        [pod] = job_pods(c, job)
        assert job.status.succeeded == 1
        assert (pod.status.phase, pod.status.reason, pod.status.exit_code) == (
            PodPhase.SUCCEEDED,
            "Completed",
            0,
        )
        assert _started_events(c, pod) == 1
        assert b"".join(c.logs(pod.metadata.name, NAMESPACE)) == b"done\n"
    assert starts.read_text().splitlines() == ["start"]
    assert processes_with(mark) == []


def test_pod_that_ended_while_the_platform_was_down_reports_its_true_exit_code(
    own: Restartable, mark: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    code = _program(_wait_for(go), "raise SystemExit(7)")
    name = unique("down")
    with own.client() as c:
        c.create(PodBuilder(name, NAMESPACE).runs(code, mark).build())
    _wait_pod_phase(own, name, done=False)

    own.halt()
    go.touch()
    wait_until(lambda: processes_with(mark) == [], WAIT_S, "the pod's process to exit")
    own.restart()

    pod = _wait_pod_phase(own, name, done=True)
    assert (pod.status.phase, pod.status.reason, pod.status.exit_code) == (
        PodPhase.FAILED,
        "Error",
        7,
    )


def test_logs_follow_resumes_across_a_platform_restart_without_loss_or_repeats(
    own: Restartable, mark: str, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    # Ten lines, then (once the platform is down) ten more, one every 0.2 s.
    code = _program(
        """
        import time
        for i in range(10):
            print(f"line {i}", flush=True)
        """,
        _wait_for(go),
        """
        for i in range(10, 20):
            time.sleep(0.2)
            print(f"line {i}", flush=True)
        """,
    )
    name = unique("chatty")
    with own.client() as c:
        c.create(PodBuilder(name, NAMESPACE).runs(code, mark).build())
    _wait_pod_phase(own, name, done=False)
    out, err = tmp_path / "follow.out", tmp_path / "follow.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        follower = subprocess.Popen(
            [sys.executable, "-m", "cnai", "logs", name, "-f", "-n", NAMESPACE],
            env=own.running.env,
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    try:
        wait_until(
            lambda: out.read_bytes().count(b"\n") >= 10, WAIT_S, "the first ten lines followed"
        )
        own.halt()
        go.touch()  # the pod prints on while the platform is down and restarting
        own.restart()
        rc = follower.wait(timeout=WAIT_S)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()

    assert rc == 0, err.read_text()
    assert out.read_text().splitlines() == [f"line {i}" for i in range(20)]
    assert _wait_pod_phase(own, name, done=True).status.phase is PodPhase.SUCCEEDED
