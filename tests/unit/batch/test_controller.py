"""The job reconciler stepped tick by tick: pods started, counted, retried and finished.

Each test plays the kubelet through :class:`JobWorld`, moving pods between phases by
writing their status, and reconciles after every move; nothing sleeps.
"""

from __future__ import annotations

import pytest

from cnai.batch.api import ConditionType, JobPhase
from cnai.batch.controller import NAME_TAKEN_RETRY_S, JobReconciler
from cnai.core.clock import FakeClock
from cnai.core.controllers.types import Request
from cnai.core.errors import NotFound
from cnai.core.events import EventRecorder
from cnai.core.pods import PodPhase
from cnai.core.resources import ResourceService
from cnai.core.store.protocol import Obj

from .builders import make_job
from .conftest import JobWorld

pytestmark = pytest.mark.anyio

RUNNING, SUCCEEDED, FAILED = PodPhase.RUNNING, PodPhase.SUCCEEDED, PodPhase.FAILED


async def test_parallelism_2_completions_4_runs_two_at_a_time_until_4_succeed(
    world: JobWorld, clock: FakeClock
) -> None:
    await world.submit(make_job("j").parallelism(2).completions(4))

    await world.tick()
    assert await world.phases() == {"j-0": "Pending", "j-1": "Pending"}
    job = await world.job()
    assert (job.status.phase, job.status.active, job.status.completions_text) == (
        JobPhase.PENDING,
        2,
        "0/4",
    )

    await world.move(RUNNING, "j-0", "j-1")
    await world.tick()
    assert len(await world.pods()) == 2
    assert (await world.job()).status.phase is JobPhase.RUNNING

    await world.move(SUCCEEDED, "j-0")
    await world.tick()
    assert await world.phases() == {"j-0": "Succeeded", "j-1": "Running", "j-2": "Pending"}

    # Three succeeded: only one more pod is wanted, even with room for two.
    await world.move(SUCCEEDED, "j-1", "j-2")
    await world.tick()
    assert sorted(await world.pods()) == ["j-0", "j-1", "j-2", "j-3"]
    assert (await world.job()).status.active == 1

    clock.advance(7)
    await world.move(SUCCEEDED, "j-3")
    await world.tick()
    job = await world.job()
    assert job.status.phase is JobPhase.SUCCEEDED
    assert (job.status.succeeded, job.status.active, job.status.failed) == (4, 0, 0)
    assert job.status.completion_time == clock.now()
    complete = job.condition(ConditionType.COMPLETE)
    assert complete is not None
    assert (complete.status, complete.reason) == ("True", "Completed")
    assert await world.reasons() == {"SuccessfulCreate": 4, "Completed": 1}
    assert await world.messages("SuccessfulCreate") == [f"Created pod: j-{i}" for i in range(4)]


@pytest.mark.parametrize(
    "backoff_limit",
    [
        pytest.param(0, id="limit-0-fails-on-the-first-failure"),
        pytest.param(1, id="limit-1-retries-once"),
        pytest.param(3, id="limit-3-fails-on-the-fourth-failure"),
    ],
)
async def test_failures_are_retried_up_to_the_backoff_limit(
    world: JobWorld, backoff_limit: int
) -> None:
    await world.submit(make_job("j").backoff_limit(backoff_limit))
    await world.tick()
    for attempt in range(backoff_limit + 1):
        assert (await world.job()).status.phase is not JobPhase.FAILED
        await world.move(FAILED, f"j-{attempt}")
        await world.tick()
    job = await world.job()
    assert job.status.phase is JobPhase.FAILED
    assert job.status.failed == backoff_limit + 1
    assert len(await world.pods()) == backoff_limit + 1  # no pod after the last failure
    failed = job.condition(ConditionType.FAILED)
    assert failed is not None
    assert (failed.status, failed.reason) == ("True", "BackoffLimitExceeded")
    assert (await world.reasons())["BackoffLimitExceeded"] == 1


async def test_backoff_failure_stops_the_pods_still_running(world: JobWorld) -> None:
    await world.submit(make_job("j").parallelism(3).completions(3).backoff_limit(1))
    await world.tick()
    await world.move(RUNNING, "j-0", "j-1", "j-2")
    await world.move(FAILED, "j-0", "j-1")
    await world.tick()
    assert await world.phases() == {
        "j-0": "Failed",
        "j-1": "Failed",
        "j-2": "Running+deleting",
    }
    job = await world.job()
    assert (job.status.phase, job.status.active, job.status.failed) == (JobPhase.FAILED, 0, 2)
    assert await world.messages("SuccessfulDelete") == ["Deleted pod: j-2"]


@pytest.mark.parametrize(
    "setup",
    [
        pytest.param([], id="fresh-job-with-pods-just-created"),
        pytest.param([(RUNNING, "j-0", "j-1")], id="job-with-running-pods"),
        pytest.param([(SUCCEEDED, "j-0", "j-1")], id="completed-job"),
        pytest.param([(FAILED, "j-0"), (RUNNING, "j-1")], id="failed-job-stopping-a-pod"),
    ],
)
async def test_a_second_reconcile_of_an_unchanged_world_does_nothing(
    world: JobWorld, setup: list[tuple[PodPhase, ...]]
) -> None:
    await world.submit(make_job("j").parallelism(2).completions(2).backoff_limit(0))
    await world.tick()
    for phase, *names in setup:
        await world.move(phase, *names)
    await world.tick()
    before = (await world.job(), await world.phases(), await world.reasons())

    await world.tick()

    after = (await world.job(), await world.phases(), await world.reasons())
    assert after[0].metadata.resource_version == before[0].metadata.resource_version
    assert after == before


class CrashingService(ResourceService):
    """A service whose Job status writes fail, like a controller killed before writing."""

    async def update(
        self, plural: str, body: Obj, namespace: str | None, name: str, *, status: bool = False
    ) -> Obj:
        if plural == "jobs" and status:
            raise RuntimeError("controller crashed before writing status")
        return await super().update(plural, body, namespace, name, status=status)


async def test_a_crash_between_creating_pods_and_writing_status_never_duplicates_pods(
    world: JobWorld, service: ResourceService, clock: FakeClock
) -> None:
    await world.submit(make_job("j").parallelism(2).completions(4))
    await world.reconcile()  # its Workload, not yet admitted: no pods
    assert await world.pods() == {}
    await world.schedule()
    crashing = CrashingService(service.registry, service.store)
    recorder = EventRecorder(service.store, "job-controller", clock=clock.now)
    doomed = JobReconciler(crashing, clock, recorder)
    with pytest.raises(RuntimeError, match="crashed"):
        await doomed.reconcile(Request("default", "j"))
    assert sorted(await world.pods()) == ["j-0", "j-1"]
    assert (await world.job()).status.active == 0  # the status write was lost

    await world.tick()

    assert sorted(await world.pods()) == ["j-0", "j-1"]
    assert (await world.job()).status.active == 2


async def test_a_pod_of_another_job_holding_the_name_is_not_adopted(
    world: JobWorld, service: ResourceService
) -> None:
    # An older job of the same name, whose pods the garbage collector has not removed.
    leftover = make_job("j").build()["spec"]["template"]
    pod = {"apiVersion": "cnai.io/v1alpha1", "kind": "Pod", "metadata": {"name": "j-0"}}
    await service.create("pods", {**pod, "spec": leftover["spec"]}, "default")
    await world.submit(make_job("j"))

    result = await world.tick()

    assert result.requeue_after == NAME_TAKEN_RETRY_S
    assert (await world.job()).status.active == 0
    assert "SuccessfulCreate" not in await world.reasons()


async def test_a_deleted_job_is_left_alone(world: JobWorld, service: ResourceService) -> None:
    await world.submit(make_job("j"))
    await service.delete("jobs", "default", "j")
    assert (await world.tick()).requeue_after is None
    with pytest.raises(NotFound):
        await service.get("jobs", "default", "j")
    assert await world.pods() == {}


async def test_pods_carry_the_template_labels_and_the_job_as_controlling_owner(
    world: JobWorld,
) -> None:
    job = await world.submit(make_job("j").template_labels(team="vision").ns("default"))
    await world.tick()
    pod = (await world.pods())["j-0"]
    assert pod["metadata"]["labels"] == {
        "team": "vision",
        "cnai.io/job-name": "j",
        "cnai.io/job-uid": job.metadata.uid,
    }
    assert pod["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "Job",
            "name": "j",
            "uid": job.metadata.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    assert pod["spec"]["command"] == ["python3", "-c", "print(6 * 7)"]
