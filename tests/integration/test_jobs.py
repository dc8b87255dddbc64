"""Jobs on the real platform: parallelism, retries, deadline, suspend and TTL clean-up.

Every pod is a real process started by the local runtime. Waits are bounded and generous
(a loaded CI machine), and nothing is asserted about timing except the order of events
the pods themselves recorded.
"""

from __future__ import annotations

from pathlib import Path

from harness import RunningPlatform, unique, wait_until
from workloads import JobBuilder, event_reasons, job_pods, pod_dir, processes_with

from cnai import Client
from cnai.batch.api import ConditionType, Job, JobPhase
from cnai.core.errors import NotFound
from cnai.core.pods import Pod, PodPhase

WAIT_S = 60.0


def _job(client: Client, name: str, namespace: str) -> Job:
    return client.get(Job, name, namespace)


def _condition(job: Job, type: ConditionType) -> tuple[str, str] | None:
    """(status, reason) of the job's condition of ``type``, if it has one."""
    found = job.condition(type)
    return None if found is None else (found.status, found.reason)


def _wait_phase(client: Client, name: str, namespace: str, phase: JobPhase) -> Job:
    wait_until(
        lambda: _job(client, name, namespace).status.phase is phase,
        WAIT_S,
        f"job {name} to be {phase}",
    )
    return _job(client, name, namespace)


def _intervals(path: Path) -> list[tuple[float, float]]:
    """The (start, end) times the pods wrote, one line each."""
    pairs = [line.split() for line in path.read_text().splitlines()]
    return [(float(start), float(end)) for start, end in pairs]


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one instant (an end sorts before a start at a tie)."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    most = running = 0
    for _, step in points:
        running += step
        most = max(most, running)
    return most


def test_parallel_job_completes_four_pods_never_more_than_two_at_once(
    client: Client, namespace: str, mark: str, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.txt"
    code = f"""
        import time
        start = time.time()
        time.sleep(0.5)
        with open({str(runs)!r}, "a") as f:
            f.write(f"{{start}} {{time.time()}}\\n")
    """
    name = unique("par")
    client.create(
        JobBuilder(name, namespace).runs(code, mark).parallelism(2).completions(4).build()
    )

    job = _wait_phase(client, name, namespace, JobPhase.SUCCEEDED)

    assert (job.status.succeeded, job.status.failed, job.status.active) == (4, 0, 0)
    assert _condition(job, ConditionType.COMPLETE) == ("True", "Completed")
    pods = job_pods(client, job)
    assert [p.status.phase for p in pods] == [PodPhase.SUCCEEDED] * 4
    assert [p.status.exit_code for p in pods] == [0] * 4
    intervals = _intervals(runs)
    assert len(intervals) == 4
    assert _max_overlap(intervals) == 2
    assert {"SuccessfulCreate", "Completed"} <= event_reasons(client, job)


def test_failing_job_is_retried_up_to_its_backoff_limit_then_fails(
    client: Client, namespace: str, mark: str
) -> None:
    name = unique("fail")
    client.create(
        JobBuilder(name, namespace).runs("import sys; sys.exit(3)", mark).backoff_limit(2).build()
    )

    job = _wait_phase(client, name, namespace, JobPhase.FAILED)

    assert _condition(job, ConditionType.FAILED) == ("True", "BackoffLimitExceeded")
    assert (job.status.failed, job.status.succeeded, job.status.active) == (3, 0, 0)
    pods = job_pods(client, job)
    assert [p.metadata.name for p in pods] == [f"{name}-0", f"{name}-1", f"{name}-2"]
    assert {(p.status.phase, p.status.reason, p.status.exit_code) for p in pods} == {
        (PodPhase.FAILED, "Error", 3)
    }
    assert "BackoffLimitExceeded" in event_reasons(client, job)


def test_job_past_its_deadline_fails_and_its_process_is_stopped(
    client: Client, namespace: str, mark: str
) -> None:
    name = unique("late")
    client.create(
        JobBuilder(name, namespace).runs("import time; time.sleep(60)", mark).deadline(2).build()
    )
    wait_until(lambda: processes_with(mark) != [], WAIT_S, "the pod's process to start")

    job = _wait_phase(client, name, namespace, JobPhase.FAILED)

    assert _condition(job, ConditionType.FAILED) == ("True", "DeadlineExceeded")
    wait_until(lambda: processes_with(mark) == [], WAIT_S, "the pod's process to end")
    wait_until(
        lambda: all(p.status.phase.terminal for p in job_pods(client, job)),
        WAIT_S,
        "the stopped pod to be removed or finished",
    )
    assert "DeadlineExceeded" in event_reasons(client, job)


def test_suspend_stops_the_running_pod_and_resume_runs_the_job_to_completion(
    client: Client, namespace: str, mark: str, tmp_path: Path
) -> None:
    starts = tmp_path / "starts.txt"
    # The first run blocks (until suspended); the run after resume finishes at once.
    code = f"""
        import time
        with open({str(starts)!r}, "a+") as f:
            f.write("start\\n")
            f.seek(0)
            first = f.read().count("start") == 1
        if first:
            time.sleep(60)
    """
    name = unique("susp")
    client.create(JobBuilder(name, namespace).runs(code, mark).build())
    wait_until(lambda: processes_with(mark) != [], WAIT_S, "the first pod's process")
    wait_until(
        lambda: _job(client, name, namespace).status.phase is JobPhase.RUNNING,
        WAIT_S,
        "the job to run",
    )

    client.patch(Job, name, {"spec": {"suspend": True}}, namespace)

    job = _wait_phase(client, name, namespace, JobPhase.SUSPENDED)
    wait_until(lambda: processes_with(mark) == [], WAIT_S, "the suspended pod's process to end")
    assert job.status.active == 0
    assert _condition(job, ConditionType.SUSPENDED) == ("True", "JobSuspended")

    client.patch(Job, name, {"spec": {"suspend": False}}, namespace)

    job = _wait_phase(client, name, namespace, JobPhase.SUCCEEDED)
    assert job.status.succeeded == 1
    assert starts.read_text().splitlines() == ["start", "start"]
    assert {"Suspended", "Resumed", "Completed"} <= event_reasons(client, job)


def test_ttl_deletes_the_finished_job_with_its_pods_and_files_and_nothing_else(
    client: Client, platform: RunningPlatform, namespace: str, mark: str
) -> None:
    keep = unique("keep")
    client.create(JobBuilder(keep, namespace).runs("print('kept')", mark).build())
    kept_job = _wait_phase(client, keep, namespace, JobPhase.SUCCEEDED)
    [kept_pod] = job_pods(client, kept_job)

    name = unique("ttl")
    manifest = JobBuilder(name, namespace).runs("import time; time.sleep(0.3)", mark).ttl(1)
    job = client.create(Job.model_validate(manifest.build()))
    # Record the pods as they appear: with a 1 s TTL they may be gone before a test sees
    # the job finished.
    seen: dict[str, Pod] = {}

    def job_gone() -> bool:
        seen.update((p.metadata.name, p) for p in job_pods(client, job))
        try:
            _job(client, name, namespace)
        except NotFound:
            return True
        return False

    wait_until(job_gone, WAIT_S, f"job {name} to be deleted by its TTL")

    assert list(seen) == [f"{name}-0"]
    wait_until(lambda: job_pods(client, job) == [], WAIT_S, "the job's pods to be deleted")
    ttl_dir = pod_dir(platform.home, seen[f"{name}-0"])
    wait_until(lambda: not ttl_dir.exists(), WAIT_S, "the pod's runtime files to be removed")
    # The job without a TTL, its finished pod and the pod's files are all still there.
    assert _job(client, keep, namespace).status.phase is JobPhase.SUCCEEDED
    assert [p.metadata.uid for p in job_pods(client, kept_job)] == [kept_pod.metadata.uid]
    assert pod_dir(platform.home, kept_pod).is_dir()
    assert b"".join(client.logs(kept_pod.metadata.name, namespace)) == b"kept\n"
