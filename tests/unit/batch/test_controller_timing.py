"""The job reconciler over time: deadlines, suspend and resume, and time to live.

The fake clock moves; ``Result.requeue_after`` says when the controller wants to look
again, and the tests check it is woken neither too early nor too late.
"""

from __future__ import annotations

import pytest

from cnai.batch.api import ConditionType, JobPhase
from cnai.core.clock import FakeClock
from cnai.core.pods import PodPhase
from cnai.core.resources import ResourceService

from .builders import make_job
from .conftest import JobWorld

pytestmark = pytest.mark.anyio


async def test_deadline_fails_the_job_exactly_when_it_runs_out(
    world: JobWorld, clock: FakeClock
) -> None:
    await world.submit(make_job("j").parallelism(2).completions(2).deadline(30))
    assert (await world.tick()).requeue_after == 30
    start = clock.now()

    clock.advance(10)
    await world.move(PodPhase.RUNNING, "j-0", "j-1")
    assert (await world.tick()).requeue_after == 20

    clock.advance(19)
    assert (await world.tick()).requeue_after == 1
    assert (await world.job()).status.phase is JobPhase.RUNNING

    clock.advance(1)
    result = await world.tick()

    assert result.requeue_after is None
    job = await world.job()
    assert job.status.phase is JobPhase.FAILED
    assert job.status.start_time == start
    failed = job.condition(ConditionType.FAILED)
    assert failed is not None
    assert (failed.reason, failed.last_transition_time) == ("DeadlineExceeded", clock.now())
    assert await world.phases() == {"j-0": "Running+deleting", "j-1": "Running+deleting"}
    assert await world.reasons() == {
        "SuccessfulCreate": 2,
        "DeadlineExceeded": 1,
        "SuccessfulDelete": 2,
    }


async def suspend(service: ResourceService, value: bool) -> None:
    job = await service.get("jobs", "default", "j")
    job["spec"]["suspend"] = value
    await service.update("jobs", job, "default", "j")


async def release(service: ResourceService, *names: str) -> None:
    """Play the kubelet finishing a deletion: drop the pods' finalizers."""
    for name in names:
        pod = await service.get("pods", "default", name)
        pod["metadata"]["finalizers"] = []
        await service.update("pods", pod, "default", name)


async def test_suspend_stops_the_pods_and_resume_starts_new_ones_with_a_new_deadline(
    world: JobWorld, service: ResourceService, clock: FakeClock
) -> None:
    await world.submit(make_job("j").parallelism(2).completions(4).deadline(60))
    await world.tick()
    await world.move(PodPhase.RUNNING, "j-0", "j-1")
    await world.move(PodPhase.SUCCEEDED, "j-0")
    await world.tick()  # j-2 replaces j-0

    await suspend(service, True)
    result = await world.tick()

    assert result.requeue_after is None  # the deadline does not run while suspended
    assert await world.phases() == {
        "j-0": "Succeeded",
        "j-1": "Running+deleting",
        "j-2": "Pending+deleting",
    }
    job = await world.job()
    assert (job.status.phase, job.status.active, job.status.succeeded) == (
        JobPhase.SUSPENDED,
        0,
        1,
    )
    cond = job.condition(ConditionType.SUSPENDED)
    assert cond is not None
    assert (cond.status, cond.reason) == ("True", "JobSuspended")

    await release(service, "j-1", "j-2")
    clock.advance(600)  # far past the deadline, which a suspended job does not count
    await world.tick()
    assert sorted(await world.pods()) == ["j-0"]

    await suspend(service, False)
    result = await world.tick()

    assert result.requeue_after == 60
    assert sorted(await world.pods()) == ["j-0", "j-1", "j-2"]  # freed names are reused
    job = await world.job()
    assert (job.status.phase, job.status.active, job.status.start_time) == (
        JobPhase.RUNNING,  # one pod has already succeeded
        2,
        clock.now(),
    )
    cond = job.condition(ConditionType.SUSPENDED)
    assert cond is not None
    assert (cond.status, cond.reason) == ("False", "JobResumed")
    reasons = await world.reasons()
    assert (reasons["Suspended"], reasons["Resumed"], reasons["SuccessfulDelete"]) == (1, 1, 2)


async def test_a_job_created_suspended_starts_nothing_until_resumed(
    world: JobWorld, service: ResourceService, clock: FakeClock
) -> None:
    await world.submit(make_job("j").suspended().deadline(5))
    await world.tick()
    job = await world.job()
    assert (job.status.phase, job.status.start_time) == (JobPhase.SUSPENDED, None)
    assert await world.pods() == {}

    clock.advance(30)
    await suspend(service, False)
    await world.tick()
    assert sorted(await world.pods()) == ["j-0"]
    assert (await world.job()).status.start_time == clock.now()


@pytest.mark.parametrize(
    ("final_phase", "job_phase"),
    [
        pytest.param(PodPhase.SUCCEEDED, JobPhase.SUCCEEDED, id="succeeded-job"),
        pytest.param(PodPhase.FAILED, JobPhase.FAILED, id="failed-job"),
    ],
)
async def test_ttl_deletes_the_finished_job_when_it_runs_out_and_not_before(
    world: JobWorld, clock: FakeClock, final_phase: PodPhase, job_phase: JobPhase
) -> None:
    await world.submit(make_job("j").backoff_limit(0).ttl(60))
    await world.tick()
    clock.advance(5)
    await world.move(final_phase, "j-0")

    assert (await world.tick()).requeue_after == 60
    assert (await world.job()).status.phase is job_phase

    clock.advance(59)
    assert (await world.tick()).requeue_after == 1
    assert not await world.gone()

    clock.advance(1)
    assert (await world.tick()).requeue_after is None
    assert await world.gone()


async def test_ttl_0_deletes_the_job_as_soon_as_it_finishes(world: JobWorld) -> None:
    await world.submit(make_job("j").ttl(0))
    await world.tick()
    await world.move(PodPhase.SUCCEEDED, "j-0")
    await world.tick()
    assert await world.gone()


async def test_without_ttl_a_finished_job_stays(world: JobWorld, clock: FakeClock) -> None:
    await world.submit(make_job("j"))
    await world.tick()
    await world.move(PodPhase.SUCCEEDED, "j-0")
    await world.tick()
    clock.advance(10**6)
    assert (await world.tick()).requeue_after is None
    assert not await world.gone()
