"""Resizing a running Job on the real platform: a merge patch of ``spec.parallelism``
grows its Workload within the ClusterQueue's quota, and lowering it stops the surplus
pods gracefully and gives their quota back.

The Job runs in its own ClusterQueue with room for exactly three 100m-cpu pods, so the
test does not depend on this machine's size. Its pods wait for a release file that is
never written (the job is deleted at the end), so nothing depends on timing; waits are
bounded and generous (the test takes a few seconds).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import unique, wait_until
from workloads import HOLD, JobBuilder, cpu_queue, job_pods

from cnai import Client
from cnai.batch.api import Job
from cnai.core.errors import NotFound
from cnai.core.pods import Pod
from cnai.scheduling.api import ClusterQueue, Workload, WorkloadPhase

WAIT_S = 60.0  # a bound, not a threshold: the test takes a few seconds
POD_CPU = "100m"


@pytest.fixture
def queue(client: Client, namespace: str) -> Iterator[tuple[str, str]]:
    """A LocalQueue in ``namespace`` and its ClusterQueue, with room for three pods."""
    with cpu_queue(client, namespace, "cq-resize", "300m") as (cq, lq):
        yield lq, cq


def _active(client: Client, job: Job) -> list[Pod]:
    """The job's pods that run and are not being stopped."""
    return [
        p
        for p in job_pods(client, job)
        if p.status.phase == "Running" and p.metadata.deletion_timestamp is None
    ]


def _used(client: Client, cq: str) -> str:
    status = client.get(ClusterQueue, cq).status
    for flavor in status.flavors_usage:
        for r in flavor.resources:
            if r.name == "cpu":
                return r.used
    return ""


def _admitted(client: Client, name: str, namespace: str) -> int:
    wl = client.get(Workload, name, namespace)
    if wl.status.phase is not WorkloadPhase.ADMITTED or wl.status.admission is None:
        return 0
    return sum(a.count for a in wl.status.admission.pod_set_assignments)


def test_patching_parallelism_grows_then_shrinks_a_running_job(
    client: Client, namespace: str, mark: str, tmp_path: Path, queue: tuple[str, str]
) -> None:
    lq, cq = queue
    name = unique("resize")
    term = tmp_path / "term"
    code = HOLD.format(release=str(tmp_path / "release"), term=str(term))
    builder = JobBuilder(name, namespace).runs(code, mark).parallelism(1).completions(10)
    builder.pod.spec["resources"] = {"requests": {"cpu": POD_CPU}}
    builder.spec.update(minParallelism=1, queue=lq)
    job = client.create(builder.build())
    try:
        wait_until(lambda: len(_active(client, job)) == 1, WAIT_S, "one pod running")
        wait_until(lambda: _used(client, cq) == "100m", WAIT_S, "usage 100m")

        client.patch(Job, name, {"spec": {"parallelism": 3}}, namespace)
        wait_until(lambda: len(_active(client, job)) == 3, WAIT_S, "three pods running")
        assert _admitted(client, name, namespace) == 3
        wait_until(lambda: _used(client, cq) == "300m", WAIT_S, "usage 300m")

        client.patch(Job, name, {"spec": {"parallelism": 1}}, namespace)
        wait_until(lambda: len(job_pods(client, job)) == 1, WAIT_S, "two pods stopped and gone")
        assert [p.metadata.name for p in _active(client, job)] == [f"{name}-0"]  # oldest kept
        assert term.read_text().splitlines() == ["sigterm", "sigterm"]  # stopped gracefully
        assert _admitted(client, name, namespace) == 1
        wait_until(lambda: _used(client, cq) == "100m", WAIT_S, "usage back to 100m")
    finally:
        with contextlib.suppress(NotFound):
            client.delete(Job, name, namespace)
