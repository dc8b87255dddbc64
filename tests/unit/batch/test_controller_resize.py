"""A running Job resized by editing its parallelism: its Workload follows, the scheduler
grows or trims the admission, and the job starts pods on the new slots or stops the
surplus ones. One 8-cpu node and the default ClusterQueue sized from it; no sleeps."""

from __future__ import annotations

from typing import Any

import pytest

from cnai.core.errors import Conflict
from cnai.core.pods import PodPhase
from cnai.core.resources import ResourceService

from .builders import make_job
from .conftest import JobWorld
from .test_controller_scheduling import release

pytestmark = pytest.mark.anyio

CPU2 = {"resources": {"requests": {"cpu": "2"}}}


async def set_spec(world: JobWorld, **fields: Any) -> None:
    """Edit the job's spec as ``cnai apply`` would."""
    job = await world.service.get("jobs", "default", world.name)
    job["spec"].update(fields)
    await world.service.update("jobs", job, "default", world.name)


def admitted(wl: dict[str, Any]) -> tuple[int, int]:
    """The admitted count and the number of placements."""
    (a,) = wl["status"]["admission"]["podSetAssignments"]
    return a["count"], len(a["placements"])


async def usage(service: ResourceService) -> str:
    cq = await service.get("clusterqueues", None, "default")
    text: str = cq["status"]["usageText"]
    return text.split(" memory")[0]


async def elastic(world: JobWorld, parallelism: int) -> None:
    job = make_job("j").parallelism(parallelism).completions(9).pod(**CPU2)
    await world.submit(job.spec(minParallelism=1))
    await world.tick()
    await world.move(PodPhase.RUNNING, *(f"j-{i}" for i in range(parallelism)))


async def test_raising_parallelism_grows_the_workload_and_starts_pods_on_the_new_slots(
    world: JobWorld,
) -> None:
    await elastic(world, 1)

    await set_spec(world, parallelism=3)
    await world.tick()

    wl = await world.workload()
    assert (wl["spec"]["podSets"][0]["count"], wl["spec"]["podSets"][0]["minCount"]) == (3, 1)
    assert admitted(wl) == (3, 3)
    pods = await world.pods()
    assert sorted(pods) == ["j-0", "j-1", "j-2"]
    assert {p["spec"]["nodeName"] for p in pods.values()} == {"node-a"}
    assert (await world.job()).status.active == 3
    assert await usage(world.service) == "cpu 6/8"


async def test_growth_beyond_the_quota_stops_at_what_fits(world: JobWorld) -> None:
    await elastic(world, 1)

    await set_spec(world, parallelism=6)  # 12 cpu wanted, 8 in the queue
    await world.tick()

    assert admitted(await world.workload()) == (4, 4)
    assert len(await world.pods()) == 4


async def test_lowering_parallelism_trims_the_workload_and_stops_the_newest_pods(
    world: JobWorld, service: ResourceService
) -> None:
    await elastic(world, 3)

    await set_spec(world, parallelism=1)
    await world.tick()

    wl = await world.workload()
    assert (wl["spec"]["podSets"][0]["count"], wl["spec"]["podSets"][0].get("minCount")) == (
        1,
        None,
    )
    assert admitted(wl) == (1, 1)
    assert await world.phases() == {
        "j-0": "Running",
        "j-1": "Running+deleting",
        "j-2": "Running+deleting",
    }
    assert (await world.job()).status.active == 1
    assert await usage(service) == "cpu 6/8"  # the stopping pods still hold their quota

    await release(service, "j-1", "j-2")
    await world.tick()

    assert await world.phases() == {"j-0": "Running"}  # no replacements
    assert await usage(service) == "cpu 2/8"
    assert admitted(await world.workload()) == (1, 1)


async def test_reaching_completions_caps_the_count_without_churn(
    world: JobWorld, service: ResourceService
) -> None:
    await world.submit(make_job("j").parallelism(3).completions(4).pod(**CPU2))
    await world.tick()
    await world.move(PodPhase.RUNNING, "j-0", "j-1", "j-2")
    await world.move(PodPhase.SUCCEEDED, "j-0")
    await world.tick()  # one completion left beyond the running: j-3 replaces j-0
    await world.move(PodPhase.RUNNING, "j-3")

    await world.move(PodPhase.SUCCEEDED, "j-1")
    await world.tick()

    wl = await world.workload()
    assert wl["spec"]["podSets"][0]["count"] == 2  # two completions left, both running
    assert admitted(wl) == (2, 2)
    phases = await world.phases()
    assert phases == {"j-0": "Succeeded", "j-1": "Succeeded", "j-2": "Running", "j-3": "Running"}
    version = wl["metadata"]["resourceVersion"]
    await world.tick()
    await world.tick()
    assert (await world.workload())["metadata"]["resourceVersion"] == version  # settled
    assert await world.phases() == phases
    assert await usage(service) == "cpu 4/8"

    await world.move(PodPhase.SUCCEEDED, "j-2", "j-3")
    await world.tick()
    assert (await world.job()).status.phase == "Succeeded"
    assert (await world.workload())["status"]["phase"] == "Finished"


async def test_parallelism_zero_gives_back_the_quota_and_a_new_one_queues_again(
    world: JobWorld, service: ResourceService
) -> None:
    await world.submit(make_job("j").parallelism(2).completions(9).pod(**CPU2))
    await world.tick()
    await world.move(PodPhase.RUNNING, "j-0", "j-1")

    await set_spec(world, parallelism=0)  # Kubernetes' pause (minParallelism must be unset)
    await world.tick()

    assert (await service.list("workloads", "default")).items == []
    assert await world.phases() == {"j-0": "Running+deleting", "j-1": "Running+deleting"}

    await release(service, "j-0", "j-1")
    await world.tick()
    status = (await world.job()).status
    assert (status.reason, status.message) == (
        "NoParallelism",
        "parallelism is 0: no pods run until it is raised",
    )
    await set_spec(world, parallelism=2)
    await world.tick()
    assert admitted(await world.workload()) == (2, 2)
    assert await world.phases() == {"j-0": "Pending", "j-1": "Pending"}  # names reused


async def test_a_resize_lost_to_a_concurrent_write_is_tried_again_shortly(
    world: JobWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    await elastic(world, 1)
    await set_spec(world, parallelism=2)
    update = world.service.update

    async def conflicting(plural: str, *args: Any, **kwargs: Any) -> Any:
        if plural == "workloads" and not kwargs.get("status"):
            raise Conflict("the object has been modified")
        return await update(plural, *args, **kwargs)

    monkeypatch.setattr(world.service, "update", conflicting)
    result = await world.reconcile()
    assert result.requeue_after == pytest.approx(0.1)
    assert (await world.workload())["spec"]["podSets"][0]["count"] == 1

    monkeypatch.setattr(world.service, "update", update)
    await world.tick()
    assert admitted(await world.workload()) == (2, 2)
