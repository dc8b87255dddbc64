"""The TrainJob reconciler stepped tick by tick with the real scheduler: a gang started
once admitted, restarted whole on failure, preemption, suspend and resize, and finished.

One 8-cpu node and the default queues sized from it. Each test plays the kubelet through
:class:`TrainWorld`, moving pods between phases and finishing their deletion, and
reconciles after every move; time moves only with the FakeClock; nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cnai.core.clock import FakeClock
from cnai.core.pods import PodPhase
from cnai.core.resources import ResourceService
from cnai.training.api import ConditionType, TrainJobPhase
from cnai.training.controller import NAME_TAKEN_RETRY_S

from .conftest import TrainWorld, add_priority_class, make_trainjob

pytestmark = pytest.mark.anyio

RUNNING, SUCCEEDED = PodPhase.RUNNING, PodPhase.SUCCEEDED
NewWorld = Callable[[], TrainWorld]


async def running_gang(world: TrainWorld, nodes: int = 2, cpu: str = "2") -> None:
    """Submit ``j`` with ``nodes`` nodes and run its first gang."""
    await world.submit(make_trainjob("j").nodes(nodes).cpu(cpu))
    await world.tick()
    await world.move(RUNNING, *(f"j-0-{r}" for r in range(nodes)))
    await world.tick()


# -- start and success ---------------------------------------------------------------


async def test_a_2_node_gang_starts_only_once_admitted_and_shares_one_master_port(
    world: TrainWorld, checkpoints: Path
) -> None:
    job = await world.submit(make_trainjob("j").nodes(2).cpu("4"))
    await world.reconcile()
    assert await world.pods() == {}
    wl = await world.workload()
    assert wl["metadata"]["name"] == "trainjob-j"
    assert wl["spec"]["podSets"] == [{"name": "nodes", "count": 2, "requests": {"cpu": "4"}}]
    assert wl["metadata"]["ownerReferences"][0]["uid"] == job.metadata.uid
    status = (await world.job()).status
    assert (status.phase, status.reason) == (TrainJobPhase.PENDING, "Queued")

    await world.schedule()
    await world.reconcile()

    pods = await world.pods()
    assert sorted(pods) == ["j-0-0", "j-0-1"]
    assert {p["spec"]["nodeName"] for p in pods.values()} == {"node-a"}
    # Every member names every rank's node, for an engine that reserves the gang at once.
    assert {p["metadata"]["annotations"]["cnai.io/gang-nodes"] for p in pods.values()} == {
        "node-a,node-a"
    }
    env0, env1 = await world.env("j-0-0"), await world.env("j-0-1")
    assert env0["MASTER_PORT"] == env1["MASTER_PORT"]
    assert (env0["RANK"], env1["RANK"], env0["WORLD_SIZE"], env1["WORLD_SIZE"]) == (
        "0",
        "1",
        "2",
        "2",
    )
    assert env0["TORCHELASTIC_RESTART_COUNT"] == "0"
    status = (await world.job()).status
    assert (status.num_nodes, status.nodes_text, status.restarts) == (2, "2/2", 0)
    assert status.start_time == world.clock.now()
    assert status.checkpoint_dir == env0["CNAI_CHECKPOINT_DIR"]
    assert Path(status.checkpoint_dir).is_dir()
    assert Path(status.checkpoint_dir).parent.parent == checkpoints
    assert await world.reasons() == {"Admitted": 1, "SuccessfulCreate": 2}


async def test_a_gang_larger_than_the_free_quota_starts_no_node_until_it_all_fits(
    world: TrainWorld, new_world: NewWorld
) -> None:
    blocker = new_world()
    await blocker.submit(make_trainjob("blocker").cpu("4"))
    await blocker.tick()
    await world.submit(make_trainjob("j").nodes(2).cpu("4"))
    await world.tick()

    status = (await world.job()).status
    assert (status.phase, status.reason) == (TrainJobPhase.PENDING, "NoQuota")
    assert status.start_time is None
    assert await world.pods() == {}  # no node of a gang starts alone

    await blocker.move(SUCCEEDED, "blocker-0-0")
    await blocker.tick()
    await world.tick()
    assert sorted(await world.pods()) == ["j-0-0", "j-0-1"]


async def test_all_nodes_succeeding_completes_the_job_and_finishes_its_workload(
    world: TrainWorld, clock: FakeClock
) -> None:
    await running_gang(world)
    status = (await world.job()).status
    assert status.phase is TrainJobPhase.RUNNING
    assert [(r.rank, r.pod, r.phase) for r in status.replicas] == [
        (0, "j-0-0", RUNNING),
        (1, "j-0-1", RUNNING),
    ]

    clock.advance(30)
    await world.move(SUCCEEDED, "j-0-0")
    await world.tick()
    assert (await world.job()).status.phase is TrainJobPhase.RUNNING  # rank 1 still runs
    await world.move(SUCCEEDED, "j-0-1", exit_code=0)
    await world.tick()

    job = await world.job()
    assert job.status.phase is TrainJobPhase.SUCCEEDED
    assert job.status.completion_time == clock.now()
    complete = job.condition(ConditionType.COMPLETE)
    assert complete is not None
    assert (complete.status, complete.reason) == ("True", "Completed")
    assert [(r.phase, r.exit_code) for r in job.status.replicas] == [
        (SUCCEEDED, None),
        (SUCCEEDED, 0),
    ]
    assert (await world.workload())["status"]["phase"] == "Finished"
    assert (await world.reasons())["Completed"] == 1
    assert await world.phases() == {"j-0-0": "Succeeded", "j-0-1": "Succeeded"}


# -- failures --------------------------------------------------------------------------


async def test_a_failed_node_restarts_the_whole_gang_once_the_old_pods_are_gone(
    world: TrainWorld,
) -> None:
    await running_gang(world)
    checkpoint_dir = (await world.job()).status.checkpoint_dir

    await world.fail("j-0-1", exit_code=3)
    await world.tick()

    assert await world.phases() == {"j-0-0": "Running+deleting", "j-0-1": "Failed"}
    status = (await world.job()).status
    assert (status.phase, status.restarts, status.failures) == (TrainJobPhase.RESTARTING, 1, 1)
    assert status.reason == "WaitingForPreviousGang"
    assert await world.messages("Restarting") == [
        "node 1 (pod j-0-1) failed with exit code 3; restarting the gang (failure 1 of 3 allowed)"
    ]

    # Rank 0 is still stopping (checkpointing in its grace period): no new gang yet.
    await world.tick()
    await world.tick()
    assert sorted(await world.pods()) == ["j-0-0", "j-0-1"]

    await world.release("j-0-0")
    await world.tick()
    assert await world.phases() == {"j-0-1": "Failed", "j-1-0": "Pending", "j-1-1": "Pending"}
    env0, env1 = await world.env("j-1-0"), await world.env("j-1-1")
    assert env0["TORCHELASTIC_RESTART_COUNT"] == env1["TORCHELASTIC_RESTART_COUNT"] == "1"
    assert env0["MASTER_PORT"] == env1["MASTER_PORT"]
    assert env0["CNAI_CHECKPOINT_DIR"] == checkpoint_dir  # resumes from the same checkpoints
    await world.move(RUNNING, "j-1-0", "j-1-1")
    await world.tick()
    status = (await world.job()).status
    assert (status.phase, status.restarts, status.failures) == (TrainJobPhase.RUNNING, 1, 1)
    assert [r.pod for r in status.replicas] == ["j-1-0", "j-1-1"]


@pytest.mark.parametrize(
    "backoff_limit",
    [
        pytest.param(0, id="limit-0-fails-on-the-first-failure"),
        pytest.param(2, id="limit-2-fails-on-the-third-failure"),
    ],
)
async def test_failures_past_the_backoff_limit_fail_the_job(
    world: TrainWorld, backoff_limit: int
) -> None:
    await world.submit(make_trainjob("j").nodes(2).cpu("2").backoff_limit(backoff_limit))
    await world.tick()
    for gang in range(backoff_limit + 1):
        assert (await world.job()).status.phase is not TrainJobPhase.FAILED
        await world.move(RUNNING, f"j-{gang}-0", f"j-{gang}-1")
        await world.fail(f"j-{gang}-0", exit_code=1)
        await world.tick()
        await world.release()
        await world.tick()

    job = await world.job()
    assert job.status.phase is TrainJobPhase.FAILED
    assert (job.status.failures, job.status.restarts) == (backoff_limit + 1, backoff_limit)
    failed = job.condition(ConditionType.FAILED)
    assert failed is not None
    assert (failed.status, failed.reason) == ("True", "BackoffLimitExceeded")
    assert f"j-{backoff_limit + 1}-0" not in await world.pods()  # no gang after the last
    assert (await world.workload())["status"]["phase"] == "Finished"
    assert (await world.reasons())["BackoffLimitExceeded"] == 1


@pytest.mark.parametrize(
    ("rules", "exit_code", "phase", "restarts", "failures"),
    [
        pytest.param(
            [("FailJob", 42)], 42, TrainJobPhase.FAILED, 0, 0, id="failjob-code-fails-at-once"
        ),
        pytest.param([("FailJob", 42)], 1, TrainJobPhase.RESTARTING, 1, 1, id="other-code-counts"),
        pytest.param(
            [("Ignore", 137)], 137, TrainJobPhase.RESTARTING, 1, 0, id="ignored-code-not-counted"
        ),
        pytest.param(
            [("Ignore", 137), ("FailJob", 137)],
            137,
            TrainJobPhase.RESTARTING,
            1,
            0,
            id="first-matching-rule-wins",
        ),
        pytest.param([("Count", 5)], 5, TrainJobPhase.FAILED, 0, 1, id="count-over-limit-0-fails"),
    ],
)
async def test_the_failure_policy_decides_by_exit_code(
    world: TrainWorld,
    rules: list[tuple[str, int]],
    exit_code: int,
    phase: TrainJobPhase,
    restarts: int,
    failures: int,
) -> None:
    job = make_trainjob("j").nodes(2).cpu("2")
    for action, code in rules:
        job.on_exit(action, code)
    if rules[0][0] == "Count":
        job.backoff_limit(0)
    await world.submit(job)
    await world.tick()
    await world.move(RUNNING, "j-0-0", "j-0-1")
    await world.fail("j-0-0", exit_code=exit_code)
    await world.tick()

    status = (await world.job()).status
    assert (status.phase, status.restarts, status.failures) == (phase, restarts, failures)
    # Either way the rest of the gang is stopped.
    assert await world.phases() == {"j-0-0": "Failed", "j-0-1": "Running+deleting"}


async def test_a_fatal_exit_code_fails_the_job_without_a_restart(world: TrainWorld) -> None:
    await world.submit(make_trainjob("j").nodes(2).cpu("2").on_exit("FailJob", 42))
    await world.tick()
    await world.move(RUNNING, "j-0-0", "j-0-1")
    await world.fail("j-0-1", exit_code=42)
    await world.tick()
    await world.release()
    await world.tick()

    job = await world.job()
    failed = job.condition(ConditionType.FAILED)
    assert failed is not None
    assert failed.reason == "PodFailurePolicy"
    assert failed.message == (
        "node 1 (pod j-0-1) failed with exit code 42, which the failure policy makes fatal"
    )
    assert await world.phases() == {"j-0-1": "Failed"}  # no new gang
    assert [(r.rank, r.exit_code) for r in job.status.replicas] == [(1, 42)]
    assert (await world.workload())["status"]["phase"] == "Finished"


async def test_an_ignored_failure_restarts_even_with_backoff_limit_0(world: TrainWorld) -> None:
    await world.submit(make_trainjob("j").nodes(2).cpu("2").backoff_limit(0).on_exit("Ignore", 137))
    await world.tick()
    for gang in range(3):  # killed by the OOM killer, again and again
        await world.move(RUNNING, f"j-{gang}-0", f"j-{gang}-1")
        await world.move(PodPhase.FAILED, f"j-{gang}-1", exit_code=137, reason="OOMKilled")
        await world.tick()
        await world.release()
        await world.tick()
    status = (await world.job()).status
    assert (status.phase, status.restarts, status.failures) == (TrainJobPhase.RESTARTING, 3, 0)
    assert sorted(await world.pods()) == ["j-2-1", "j-3-0", "j-3-1"]  # older gangs removed
    assert (await world.env("j-3-0"))["TORCHELASTIC_RESTART_COUNT"] == "3"
    assert (await world.messages("Restarting"))[0] == (
        "node 1 (pod j-0-1) failed with exit code 137 (OOMKilled); "
        "the failure policy ignores it: restarting the gang"
    )


# -- suspend, preemption and resize ----------------------------------------------------


async def test_suspend_stops_the_gang_and_gives_back_the_quota_and_resume_starts_a_new_one(
    world: TrainWorld, service: ResourceService
) -> None:
    await running_gang(world)

    await world.set_spec(suspend=True)
    await world.tick()

    assert await world.phases() == {"j-0-0": "Running+deleting", "j-0-1": "Running+deleting"}
    assert (await service.list("workloads", "default")).items == []
    job = await world.job()
    assert job.status.phase is TrainJobPhase.SUSPENDED
    suspended = job.condition(ConditionType.SUSPENDED)
    assert suspended is not None
    assert suspended.status == "True"
    assert (job.status.restarts, job.status.failures) == (1, 0)
    await world.release()
    await world.tick()
    assert await world.pods() == {}
    assert (await world.job()).status.phase is TrainJobPhase.SUSPENDED

    await world.set_spec(suspend=False)
    await world.tick()

    assert await world.phases() == {"j-1-0": "Pending", "j-1-1": "Pending"}
    assert (await world.env("j-1-0"))["TORCHELASTIC_RESTART_COUNT"] == "1"
    job = await world.job()
    resumed = job.condition(ConditionType.SUSPENDED)
    assert resumed is not None
    assert (resumed.status, resumed.reason) == ("False", "JobResumed")
    assert (await world.reasons())["Resumed"] == 1


async def test_a_preempted_gang_stops_is_requeued_and_resumes_when_readmitted(
    service: ResourceService, new_world: NewWorld
) -> None:
    await add_priority_class(service, "urgent", 1000)
    low, high = new_world(), new_world()
    await low.submit(make_trainjob("low").nodes(2).cpu("4"))
    await low.tick()
    await low.move(RUNNING, "low-0-0", "low-0-1")
    await low.tick()
    await high.submit(make_trainjob("high").cpu("4").priority("urgent"))

    await high.tick()  # the scheduler evicts low's Workload
    assert (await low.workload())["status"]["phase"] == "Evicting"
    await low.reconcile()  # low stops its gang

    assert await low.phases() == {"low-0-0": "Running+deleting", "low-0-1": "Running+deleting"}
    status = (await low.job()).status
    assert (status.phase, status.reason) == (TrainJobPhase.RESTARTING, "Preempted")
    assert (status.restarts, status.failures) == (1, 0)
    assert (await low.reasons())["Preempted"] == 1
    await high.tick()
    await low.tick()
    await high.tick()
    # The victim's nodes are still stopping (checkpointing in their grace period): they
    # hold the node, its Workload stays evicted and the preemptor waits.
    assert (await low.workload())["status"]["phase"] == "Evicting"
    assert await high.pods() == {}

    await low.release()
    await high.tick()
    assert sorted(await high.pods()) == ["high-0-0"]
    await low.tick()
    status = (await low.job()).status
    assert (status.phase, status.reason, status.restarts) == (
        TrainJobPhase.RESTARTING,
        "NoQuota",
        1,
    )
    assert await low.pods() == {}

    await high.move(SUCCEEDED, "high-0-0")
    await high.tick()
    await low.tick()
    assert await low.phases() == {"low-1-0": "Pending", "low-1-1": "Pending"}
    assert (await low.env("low-1-1"))["TORCHELASTIC_RESTART_COUNT"] == "1"
    assert (await low.job()).status.failures == 0


async def test_an_elastic_gang_starts_small_and_restarts_at_the_bigger_size_when_room_frees(
    world: TrainWorld, new_world: NewWorld
) -> None:
    blocker = new_world()
    await blocker.submit(make_trainjob("blocker").cpu("4"))
    await blocker.tick()
    await world.submit(make_trainjob("j").elastic(1, 2).cpu("4"))
    await world.tick()

    wl = await world.workload()
    assert (wl["spec"]["podSets"][0]["count"], wl["spec"]["podSets"][0]["minCount"]) == (2, 1)
    assert await world.admitted() == 1
    assert await world.phases() == {"j-0-0": "Pending"}
    assert (await world.env("j-0-0"))["WORLD_SIZE"] == "1"
    await world.move(RUNNING, "j-0-0")
    await world.tick()
    status = (await world.job()).status
    assert (status.phase, status.num_nodes, status.nodes_text) == (TrainJobPhase.RUNNING, 1, "1/2")

    await blocker.move(SUCCEEDED, "blocker-0-0")
    await blocker.tick()  # the blocker's Workload finishes; the scheduler grows j's
    assert await world.admitted() == 2
    await world.tick()

    assert await world.phases() == {"j-0-0": "Running+deleting"}
    status = (await world.job()).status
    assert (status.phase, status.restarts, status.failures) == (TrainJobPhase.RESTARTING, 1, 0)
    assert await world.messages("Resized") == [
        "resizing from 1 to 2 nodes; restarting from the latest checkpoint"
    ]

    await world.release()
    await world.tick()
    assert await world.phases() == {"j-1-0": "Pending", "j-1-1": "Pending"}
    env = await world.env("j-1-1")
    assert (env["WORLD_SIZE"], env["RANK"], env["TORCHELASTIC_RESTART_COUNT"]) == ("2", "1", "1")
    await world.move(RUNNING, "j-1-0", "j-1-1")
    await world.tick()
    status = (await world.job()).status
    assert (status.phase, status.num_nodes, status.nodes_text) == (TrainJobPhase.RUNNING, 2, "2/2")
    assert [r.pod for r in status.replicas] == ["j-1-0", "j-1-1"]


async def test_an_elastic_gang_shrunk_by_preemption_restarts_at_the_smaller_size(
    service: ResourceService, new_world: NewWorld
) -> None:
    await add_priority_class(service, "urgent", 1000)
    low, high = new_world(), new_world()
    await low.submit(make_trainjob("low").elastic(1, 2).cpu("4"))
    await low.tick()
    await low.move(RUNNING, "low-0-0", "low-0-1")
    await low.tick()
    await high.submit(make_trainjob("high").cpu("4").priority("urgent"))

    await high.tick()  # the scheduler shrinks low to one node rather than evicting it
    assert await low.admitted() == 1
    await low.reconcile()

    assert await low.phases() == {"low-0-0": "Running+deleting", "low-0-1": "Running+deleting"}
    status = (await low.job()).status
    assert (status.restarts, status.failures, status.reason) == (1, 0, "Resized")
    await low.tick()
    await high.tick()
    assert await high.pods() == {}  # low's stopping nodes still hold the node

    await low.release()
    await low.tick()
    await high.tick()
    assert sorted(await high.pods()) == ["high-0-0"]
    assert await low.phases() == {"low-1-0": "Pending"}
    assert (await low.env("low-1-0"))["WORLD_SIZE"] == "1"


# -- time --------------------------------------------------------------------------------


async def test_a_gang_running_past_its_deadline_fails(world: TrainWorld, clock: FakeClock) -> None:
    await world.submit(make_trainjob("j").nodes(2).cpu("2").deadline(60))
    result = await world.tick()
    assert result.requeue_after == pytest.approx(60)
    await world.move(RUNNING, "j-0-0", "j-0-1")

    clock.advance(59)
    result = await world.tick()
    assert result.requeue_after == pytest.approx(1)
    assert (await world.job()).status.phase is TrainJobPhase.RUNNING

    clock.advance(1)
    await world.reconcile()
    job = await world.job()
    assert job.status.phase is TrainJobPhase.FAILED
    failed = job.condition(ConditionType.FAILED)
    assert failed is not None
    assert failed.reason == "DeadlineExceeded"
    assert await world.phases() == {"j-0-0": "Running+deleting", "j-0-1": "Running+deleting"}
    assert (await world.workload())["status"]["phase"] == "Finished"


async def test_a_finished_job_is_deleted_after_its_ttl(world: TrainWorld, clock: FakeClock) -> None:
    await world.submit(make_trainjob("j").ttl(30))
    await world.tick()
    await world.move(SUCCEEDED, "j-0-0")
    result = await world.tick()
    assert result.requeue_after == pytest.approx(30)

    clock.advance(29)
    await world.reconcile()
    assert not await world.gone()

    clock.advance(1)
    await world.reconcile()
    assert await world.gone()


async def test_the_deadline_counts_from_the_last_start_after_a_resume(
    world: TrainWorld, clock: FakeClock
) -> None:
    await world.submit(make_trainjob("j").cpu("2").deadline(60))
    await world.tick()
    clock.advance(50)
    await world.set_spec(suspend=True)
    await world.tick()
    await world.release()
    clock.advance(100)  # past the deadline, but suspended time does not count
    await world.tick()
    assert (await world.job()).status.phase is TrainJobPhase.SUSPENDED

    await world.set_spec(suspend=False)
    await world.tick()
    assert (await world.job()).status.start_time == clock.now()

    clock.advance(59)
    await world.tick()
    assert (await world.job()).status.phase is not TrainJobPhase.FAILED
    clock.advance(1)
    await world.tick()
    assert (await world.job()).status.phase is TrainJobPhase.FAILED


# -- edges -------------------------------------------------------------------------------


async def test_a_job_submitted_suspended_queues_nothing_until_resumed(
    world: TrainWorld, service: ResourceService
) -> None:
    await world.submit(make_trainjob("j").nodes(2).cpu("2").suspended())
    await world.tick()
    assert (await service.list("workloads", "default")).items == []
    assert await world.pods() == {}
    status = (await world.job()).status
    assert (status.phase, status.restarts) == (TrainJobPhase.SUSPENDED, 0)

    await world.set_spec(suspend=False)
    await world.tick()
    assert sorted(await world.pods()) == ["j-0-0", "j-0-1"]  # the first gang, still gang 0


async def test_a_pod_name_held_by_another_owner_is_tried_again_shortly(
    world: TrainWorld, service: ResourceService
) -> None:
    squatter = {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Pod",
        "metadata": {"name": "j-0-0", "namespace": "default"},
        "spec": {"command": ["sleep", "1"]},
    }
    await service.create("pods", squatter)
    await world.submit(make_trainjob("j").nodes(2).cpu("2"))
    result = await world.tick()

    assert result.requeue_after == pytest.approx(NAME_TAKEN_RETRY_S)
    assert sorted(await world.pods()) == ["j-0-1"]  # the squatter is not the job's
    assert "cnai.io/trainjob-uid" not in (await service.get("pods", "default", "j-0-0"))[
        "metadata"
    ].get("labels", {})


async def test_an_earlier_gang_still_running_is_stopped_before_the_next_starts(
    world: TrainWorld, service: ResourceService
) -> None:
    await running_gang(world)
    # A controller that crashed mid-restart: the status says gang 1, gang 0 still runs.
    job = await service.get("trainjobs", "default", "j")
    job["status"]["restarts"] = 1
    await service.update("trainjobs", job, "default", "j", status=True)

    await world.tick()
    assert await world.phases() == {"j-0-0": "Running+deleting", "j-0-1": "Running+deleting"}
    assert (await world.job()).status.reason == "WaitingForPreviousGang"

    await world.release()
    await world.tick()
    assert await world.phases() == {"j-1-0": "Pending", "j-1-1": "Pending"}
