"""Node objects from a multi-node runtime (Ray): one per machine, a vanished one kept as
NotReady (NodeLost) and unschedulable, and schedulable again if it comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from cnai.core.nodes import is_ready, sync_node, sync_nodes
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.runtime import MultiNode, NodeInfo
from cnai.core.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio


@dataclass
class FakeCluster:
    """The nodes of a multi-node runtime; the test adds and removes machines."""

    name: str = "ray"
    machines: list[str] = field(default_factory=lambda: ["ray-a", "ray-b"])

    async def nodes(self) -> list[NodeInfo]:
        cap = {"cpu": "4", "memory": "8Gi"}
        return [NodeInfo(m, cap, dict(cap), labels={"ray.io/node-id": m}) for m in self.machines]


@pytest.fixture
def service(store: SQLiteStore, registry: Registry) -> ResourceService:
    return ResourceService(registry, store)


async def node(service: ResourceService, name: str) -> dict[str, Any]:
    return await service.get("nodes", None, name)


def ready(obj: dict[str, Any]) -> tuple[str, str]:
    cond = next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")
    return cond["status"], cond["reason"]


def test_the_fake_is_a_multi_node_runtime() -> None:
    assert isinstance(FakeCluster(), MultiNode)


async def test_one_node_per_machine_with_the_single_node_status_shape(
    service: ResourceService,
) -> None:
    assert await sync_nodes(service, FakeCluster()) == ["ray-a", "ray-b"]
    a = await node(service, "ray-a")
    assert a["metadata"]["labels"] == {"ray.io/node-id": "ray-a"}
    assert a["status"]["runtime"] == "ray"
    assert a["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}
    assert ready(a) == ("True", "RuntimeReady")
    assert is_ready(a)


async def test_a_vanished_node_becomes_not_ready_and_unschedulable(
    service: ResourceService,
) -> None:
    cluster = FakeCluster()
    await sync_nodes(service, cluster)
    cluster.machines = ["ray-b"]
    assert await sync_nodes(service, cluster) == ["ray-b"]
    lost = await node(service, "ray-a")
    assert ready(lost) == ("False", "NodeLost")
    assert lost["spec"]["unschedulable"] is True
    assert lost["status"]["allocatable"] == {"cpu": "4", "memory": "8Gi"}  # what it last had
    assert not is_ready(lost)
    assert ready(await node(service, "ray-b")) == ("True", "RuntimeReady")


async def test_a_lost_node_that_returns_is_schedulable_again(service: ResourceService) -> None:
    cluster = FakeCluster()
    await sync_nodes(service, cluster)
    cluster.machines = ["ray-b"]
    await sync_nodes(service, cluster)
    cluster.machines = ["ray-a", "ray-b"]
    await sync_nodes(service, cluster)
    back = await node(service, "ray-a")
    assert (ready(back), back["spec"]["unschedulable"]) == (("True", "RuntimeReady"), False)


async def test_a_cordon_on_a_live_node_is_left_alone(service: ResourceService) -> None:
    await sync_nodes(service, FakeCluster())
    a = await node(service, "ray-a")
    await service.update("nodes", dict(a, spec={"unschedulable": True}), None, "ray-a")
    await sync_nodes(service, FakeCluster())
    assert (await node(service, "ray-a"))["spec"]["unschedulable"] is True


async def test_an_unchanged_cluster_writes_nothing(service: ResourceService) -> None:
    await sync_nodes(service, FakeCluster())
    cluster = FakeCluster(machines=["ray-b"])
    await sync_nodes(service, cluster)
    before = (await service.list("nodes")).resource_version
    await sync_nodes(service, cluster)
    assert (await service.list("nodes")).resource_version == before


async def test_other_runtimes_nodes_are_left_alone(service: ResourceService) -> None:
    @dataclass
    class Local:
        name: str = "local"

        async def node(self) -> NodeInfo:
            return NodeInfo("laptop", {"cpu": "8"}, {"cpu": "8"})

    await sync_node(service, Local())  # type: ignore[arg-type]  # only node() is used
    await sync_nodes(service, FakeCluster(machines=[]))
    assert ready(await node(service, "laptop")) == ("True", "RuntimeReady")
