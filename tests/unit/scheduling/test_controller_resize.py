"""The scheduler's shell and a Workload whose spec count changed while admitted: grown
where quota and nodes allow, trimmed when lowered (its surplus pods hold their quota
until they are gone). Stepped pass by pass against a real store and a fake clock."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cnai.core.resources import ResourceService
from cnai.scheduling.api import WorkloadPhase

from .test_controller import Cluster, clock, service  # noqa: F401

pytestmark = pytest.mark.anyio


@pytest.fixture
async def cluster(service: ResourceService, clock: Any) -> Cluster:  # noqa: F811
    c = Cluster(service, clock)
    await c.node("node-a", cpu="2")
    await c.run()
    return c


async def set_count(cluster: Cluster, name: str, count: int) -> None:
    """Resize as the job controller does: an update of the spec at the version read."""
    body = await cluster.raw("workloads", name, "default")
    body["spec"]["podSets"][0]["count"] = count
    await cluster.service.update("workloads", body, "default", name)


async def usage(cluster: Cluster) -> str:
    cq = await cluster.raw("clusterqueues", "default")
    text: str = cq["status"]["usageText"]
    return text.split(" memory")[0]


async def running(cluster: Cluster, name: str, count: int) -> None:
    await cluster.submit(name, count, cpu="500m", min_count=1)
    await cluster.run()
    for i in range(count):
        await cluster.pod_of(name, f"{name}-{i}")


async def test_a_raised_count_is_grown_within_the_quota(cluster: Cluster) -> None:
    await running(cluster, "elastic", 1)

    await set_count(cluster, "elastic", 6)  # 3 cpu wanted, 2 in the queue
    await cluster.run()

    wl = await cluster.wl("elastic")
    assert wl.status.admission is not None
    (a,) = wl.status.admission.pod_set_assignments
    assert (a.count, len(a.placements), Decimal(a.resource_usage["cpu"])) == (4, 4, 2)
    assert await usage(cluster) == "cpu 2/2"


async def test_a_lowered_count_is_trimmed_and_its_quota_freed_once_the_pods_are_gone(
    cluster: Cluster,
) -> None:
    await running(cluster, "elastic", 3)

    await set_count(cluster, "elastic", 1)
    await cluster.run()

    wl = await cluster.wl("elastic")
    assert wl.status.phase is WorkloadPhase.ADMITTED
    assert wl.status.admission is not None
    (a,) = wl.status.admission.pod_set_assignments
    assert (a.count, len(a.placements), Decimal(a.resource_usage["cpu"])) == (1, 1, Decimal("0.5"))
    assert [c.type for c in wl.status.conditions if c.type == "Shrunk"] == []
    events = (await cluster.service.list("events", "default")).items
    assert [(e["type"], e["message"]) for e in events if e["reason"] == "Resized"] == [
        ("Normal", "Resized to 1 pods: its spec asks for fewer; the surplus pods are stopped")
    ]
    assert await usage(cluster) == "cpu 1500m/2"  # the two surplus pods still run

    await cluster.remove_pod("elastic-2")
    await cluster.remove_pod("elastic-1")
    await cluster.run()

    assert await usage(cluster) == "cpu 500m/2"
    await cluster.run()
    assert (await cluster.wl("elastic")).status == wl.status  # trimmed once, then settled


async def test_the_freed_quota_admits_a_waiting_workload(cluster: Cluster) -> None:
    await running(cluster, "elastic", 4)
    await cluster.submit("next", 2, cpu="500m")
    await cluster.run()
    assert (await cluster.wl("next")).status.phase is WorkloadPhase.PENDING

    await set_count(cluster, "elastic", 2)
    await cluster.run()
    await cluster.remove_pod("elastic-3")
    await cluster.remove_pod("elastic-2")
    await cluster.run()

    assert (await cluster.wl("next")).status.phase is WorkloadPhase.ADMITTED
    assert await usage(cluster) == "cpu 2/2"
