"""Jobs through the scheduler: a Workload per Job, pods only once admitted and placed.

Several :class:`JobWorld` s share one store (one 8-cpu node, the default queues); each
tick runs the job reconciler, a scheduling pass and the job reconciler again.
"""

from __future__ import annotations

import pytest

from cnai.batch.api import JobPhase
from cnai.core.clock import FakeClock
from cnai.core.pods import PodPhase
from cnai.core.resources import ResourceService

from .builders import make_job
from .conftest import JobWorld

pytestmark = pytest.mark.anyio

CPU4 = {"resources": {"requests": {"cpu": "4"}}}


async def release(service: ResourceService, *names: str) -> None:
    """Play the kubelet finishing a deletion: drop the pods' finalizers."""
    for name in names:
        pod = await service.get("pods", "default", name)
        pod["metadata"]["finalizers"] = []
        await service.update("pods", pod, "default", name)


async def test_the_job_creates_its_workload_and_bound_pods_once_admitted(
    world: JobWorld,
) -> None:
    job = await world.submit(make_job("j").parallelism(2).completions(3).pod(**CPU4))
    await world.reconcile()
    assert await world.pods() == {}
    wl = await world.workload()
    assert wl["spec"] == {
        "queueName": "default",
        "priorityClassName": "",
        "podSets": [{"name": "main", "count": 2, "requests": {"cpu": "4"}}],
    }
    assert wl["metadata"]["ownerReferences"][0]["uid"] == job.metadata.uid
    assert (await world.job()).status.reason == "Queued"

    await world.schedule()
    await world.reconcile()

    pods = await world.pods()
    assert sorted(pods) == ["j-0", "j-1"]
    assert {p["spec"]["nodeName"] for p in pods.values()} == {"node-a"}
    assert {p["metadata"]["annotations"]["cnai.io/workload"] for p in pods.values()} == {"j"}
    assert ((await world.job()).status.reason, (await world.job()).status.message) == ("", "")


async def test_a_gang_larger_than_free_quota_waits_with_the_reason_and_starts_later(
    service: ResourceService, clock: FakeClock
) -> None:
    first, second = JobWorld(service, clock), JobWorld(service, clock)
    await first.submit(make_job("first").pod(**CPU4).parallelism(1))
    await first.tick()
    await second.submit(make_job("second").parallelism(2).completions(2).pod(**CPU4))
    await second.tick()

    job = await second.job()
    assert (job.status.phase, job.status.reason, job.status.active) == (
        JobPhase.PENDING,
        "NoQuota",
        0,
    )
    assert job.status.message == ("needs 8 cpu in flavor default, clusterqueue default has 4 free")
    assert job.status.start_time is None  # it has not started: no deadline runs
    assert await second.pods() == {}

    await first.move(PodPhase.SUCCEEDED, "first-0")
    await first.tick()
    assert (await service.get("workloads", "default", "first"))["status"]["phase"] == "Finished"
    await second.tick()

    assert sorted(await second.pods()) == ["second-0", "second-1"]
    assert (await second.job()).status.reason == ""


async def test_preempted_job_stops_its_pods_waits_and_resumes_counting_when_readmitted(
    service: ResourceService, clock: FakeClock
) -> None:
    await service.create(
        "priorityclasses",
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "PriorityClass",
            "metadata": {"name": "urgent"},
            "value": 1000,
        },
    )
    low, high = JobWorld(service, clock), JobWorld(service, clock)
    await low.submit(make_job("low").parallelism(2).completions(3).pod(**CPU4))
    await low.tick()
    await low.move(PodPhase.RUNNING, "low-0", "low-1")
    await low.move(PodPhase.SUCCEEDED, "low-0")
    await low.tick()  # low-2 replaces low-0
    await high.submit(make_job("high").pod(**CPU4).spec(priorityClassName="urgent"))

    await high.tick()  # the scheduler marks low evicted
    await low.tick()  # low stops its pods

    job = await low.job()
    assert await low.phases() == {
        "low-0": "Succeeded",
        "low-1": "Running+deleting",
        "low-2": "Pending+deleting",
    }
    assert job.status.reason == "Preempted"
    assert job.status.message.startswith(
        "preempted: evicted by default/high (priority 1000) to free quota"
    )
    assert (await low.reasons())["Preempted"] == 1
    assert await high.pods() == {}  # the victim still holds its quota

    await release(service, "low-1", "low-2")
    await high.tick()
    assert sorted(await high.pods()) == ["high-0"]
    await low.tick()
    job = await low.job()
    assert (job.status.reason, job.status.succeeded) == ("NoQuota", 1)

    await high.move(PodPhase.SUCCEEDED, "high-0")
    await high.tick()
    await low.tick()
    assert await low.phases() == {"low-0": "Succeeded", "low-1": "Pending", "low-2": "Pending"}


async def test_min_parallelism_starts_the_job_at_the_count_that_fits(
    service: ResourceService, clock: FakeClock
) -> None:
    world = JobWorld(service, clock)
    await world.submit(
        make_job("j").parallelism(3).completions(3).pod(**CPU4).spec(minParallelism=1)
    )
    await world.tick()
    assert sorted(await world.pods()) == ["j-0", "j-1"]
    wl = await world.workload()
    assert wl["spec"]["podSets"][0]["minCount"] == 1
    assert wl["status"]["admission"]["podSetAssignments"][0]["count"] == 2


async def test_suspend_gives_back_the_quota_and_resume_queues_again(
    world: JobWorld, service: ResourceService
) -> None:
    await world.submit(make_job("j").pod(**CPU4))
    await world.tick()
    job = await service.get("jobs", "default", "j")
    job["spec"]["suspend"] = True
    await service.update("jobs", job, "default", "j")
    await world.tick()
    assert (await service.list("workloads", "default")).items == []


async def test_an_elastic_job_shrunk_by_preemption_stops_its_newest_pods_and_keeps_running(
    service: ResourceService, clock: FakeClock
) -> None:
    await service.create(
        "priorityclasses",
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "PriorityClass",
            "metadata": {"name": "urgent"},
            "value": 1000,
        },
    )
    cpu2 = {"resources": {"requests": {"cpu": "2"}}}
    cpu6 = {"resources": {"requests": {"cpu": "6"}}}
    low, high = JobWorld(service, clock), JobWorld(service, clock)
    await low.submit(
        make_job("low").parallelism(3).completions(3).pod(**cpu2).spec(minParallelism=1)
    )
    await low.tick()
    await low.move(PodPhase.RUNNING, "low-0", "low-1", "low-2")
    await high.submit(make_job("high").pod(**cpu6).spec(priorityClassName="urgent"))

    await high.tick()  # the scheduler shrinks low to 1 pod
    await low.tick()  # low stops its surplus pods, highest-numbered first

    wl = await low.workload()
    assert wl["status"]["phase"] == "Admitted"
    assert wl["status"]["admission"]["podSetAssignments"][0]["count"] == 1
    assert await low.phases() == {
        "low-0": "Running",
        "low-1": "Running+deleting",
        "low-2": "Running+deleting",
    }
    job = await low.job()
    assert (job.status.reason, job.status.active) == ("", 1)
    assert await high.pods() == {}  # the surplus pods still hold their quota

    await release(service, "low-1", "low-2")
    await high.tick()
    assert sorted(await high.pods()) == ["high-0"]
    await low.tick()
    assert await low.phases() == {"low-0": "Running"}  # no replacement pods
