"""Jobs through the scheduler on the real platform: quota, preemption, partial admission.

The default ClusterQueue is sized from this machine's Node, so its cpu quota is the
machine's cpus (Q below); gangs are made of pods requesting 1 cpu each. Pods wait for a
release file the test writes, so nothing depends on timing; waits are bounded and
generous. Every test deletes its jobs at the end: the session platform and its quota are
shared.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import unique, wait_until
from workloads import HOLD, JobBuilder, event_reasons, job_pods

from cnai import Client
from cnai.batch.api import Job, JobPhase
from cnai.core.errors import NotFound
from cnai.core.meta import ObjectMeta
from cnai.core.quantity import parse_quantity
from cnai.scheduling.api import ClusterQueue, PriorityClass, Workload, WorkloadPhase
from cnai.scheduling.snapshots import queue_position

WAIT_S = 90.0


@pytest.fixture
def quota(client: Client) -> int:
    """The default ClusterQueue's cpu quota: this machine's cpus."""
    wait_until(lambda: _has_default_queue(client), 30, "the default ClusterQueue")
    cq = client.get(ClusterQueue, "default")
    cpu = next(
        r.nominal_quota for r in cq.spec.resource_groups[0].flavors[0].resources if r.name == "cpu"
    )
    q = int(parse_quantity(cpu))
    if q < 1:
        pytest.skip("this machine has under one cpu")
    return q


def _has_default_queue(client: Client) -> bool:
    try:
        client.get(ClusterQueue, "default")
    except NotFound:
        return False
    return True


@pytest.fixture
def jobs(client: Client, namespace: str) -> Iterator[list[str]]:
    """Names of the jobs a test creates; they are deleted (quota freed) at the end."""
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(NotFound):
            client.delete(Job, name, namespace)


def _job(
    name: str, namespace: str, mark: str, tmp: Path, pods: int, **spec: object
) -> dict[str, object]:
    code = HOLD.format(release=str(tmp / "release"), term=str(tmp / f"{name}.term"))
    builder = JobBuilder(name, namespace).runs(code, mark).parallelism(pods).completions(pods)
    builder.pod.spec["resources"] = {"requests": {"cpu": "1"}}
    builder.spec.update(spec)
    return builder.build()


def _get(client: Client, name: str, namespace: str) -> Job:
    return client.get(Job, name, namespace)


def _wait_phase(client: Client, name: str, namespace: str, phase: JobPhase) -> Job:
    wait_until(
        lambda: _get(client, name, namespace).status.phase is phase, WAIT_S, f"{name} {phase}"
    )
    return _get(client, name, namespace)


def _running(client: Client, job: Job) -> int:
    return sum(p.status.phase == "Running" for p in job_pods(client, job))


def test_gang_larger_than_free_quota_waits_with_a_clear_reason_then_starts(
    client: Client, namespace: str, mark: str, tmp_path: Path, quota: int, jobs: list[str]
) -> None:
    holder, gang = unique("holder"), unique("gang")
    jobs += [holder, gang]
    (tmp_path / "gate").mkdir()
    client.create(_job(holder, namespace, mark, tmp_path / "gate", 1))
    wait_until(lambda: _running(client, _get(client, holder, namespace)) == 1, WAIT_S, "holder")

    client.create(_job(gang, namespace, mark, tmp_path, quota))
    wait_until(
        lambda: _get(client, gang, namespace).status.reason == "NoQuota", WAIT_S, "gang to wait"
    )

    job = _get(client, gang, namespace)
    assert (job.status.phase, job.status.active) == (JobPhase.PENDING, 0)
    assert job.status.message.startswith(
        f"needs {quota} cpu in flavor default, clusterqueue default has {quota - 1} free"
    )
    assert job_pods(client, job) == []
    wl = client.get(Workload, gang, namespace)
    assert (wl.status.phase, wl.status.reason) == (WorkloadPhase.PENDING, "NoQuota")
    others = client.list(Workload, namespace).items
    assert queue_position(wl, others, client.list(PriorityClass).items) == 1

    (tmp_path / "gate" / "release").touch()  # the holder finishes: its quota frees
    (tmp_path / "release").touch()
    job = _wait_phase(client, gang, namespace, JobPhase.SUCCEEDED)
    assert (job.status.succeeded, job.status.reason) == (quota, "")
    assert client.get(Workload, gang, namespace).status.phase is WorkloadPhase.FINISHED


def test_high_priority_job_preempts_a_low_one_which_is_stopped_gracefully_and_requeued(
    client: Client, namespace: str, mark: str, tmp_path: Path, quota: int, jobs: list[str]
) -> None:
    urgent = unique("urgent")
    client.create(PriorityClass(metadata=ObjectMeta(name=urgent), value=1000))
    low, high = unique("low"), unique("high")
    jobs += [low, high]
    (tmp_path / "low").mkdir()
    client.create(_job(low, namespace, mark, tmp_path / "low", quota))
    wait_until(lambda: _running(client, _get(client, low, namespace)) == quota, WAIT_S, "low")

    (tmp_path / "high").mkdir()
    (tmp_path / "high" / "release").touch()  # the high-priority job ends at once
    client.create(_job(high, namespace, mark, tmp_path / "high", 1, priorityClassName=urgent))

    job = _wait_phase(client, high, namespace, JobPhase.SUCCEEDED)
    assert job.status.succeeded == 1
    term = tmp_path / "low" / f"{low}.term"
    wait_until(term.exists, WAIT_S, "the victim's SIGTERM marker")
    victim = _get(client, low, namespace)
    assert "Preempted" in event_reasons(client, victim)
    assert "Preempted" in event_reasons(client, client.get(Workload, low, namespace))

    # Requeued: it is admitted again once the high-priority job is done, and completes.
    (tmp_path / "low" / "release").touch()
    job = _wait_phase(client, low, namespace, JobPhase.SUCCEEDED)
    assert job.status.succeeded == quota
    assert job.status.failed == 0  # stopped pods are not failures


def test_partial_admission_starts_a_job_at_the_count_that_fits(
    client: Client, namespace: str, mark: str, tmp_path: Path, quota: int, jobs: list[str]
) -> None:
    name = unique("partial")
    jobs.append(name)
    client.create(_job(name, namespace, mark, tmp_path, quota + 1, minParallelism=1))

    wait_until(lambda: _running(client, _get(client, name, namespace)) == quota, WAIT_S, "start")
    wl = client.get(Workload, name, namespace)
    assert wl.status.admission is not None
    assert wl.status.admission.pod_set_assignments[0].count == quota
    assert _get(client, name, namespace).status.active == quota

    (tmp_path / "release").touch()
    job = _wait_phase(client, name, namespace, JobPhase.SUCCEEDED)
    assert job.status.succeeded == quota + 1
