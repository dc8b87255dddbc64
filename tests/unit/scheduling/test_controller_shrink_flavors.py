"""The scheduler's shell: elastic victims shrunk by preemption, and flavors' node labels
restricting placement. Stepped pass by pass against a real store and a fake clock."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cnai.core.resources import ResourceService
from cnai.scheduling.api import WorkloadPhase

from .test_controller import Cluster, V, clock, service  # noqa: F401

pytestmark = pytest.mark.anyio


async def high_priority(cluster: Cluster) -> None:
    await cluster.service.create(
        "priorityclasses",
        {"apiVersion": V, "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000},
    )


@pytest.fixture
async def cluster(service: ResourceService, clock: Any) -> Cluster:  # noqa: F811
    c = Cluster(service, clock)
    await c.node("node-a", cpu="2")
    await c.run()
    return c


async def test_an_elastic_victim_is_shrunk_to_what_the_preemptor_needs_not_evicted(
    cluster: Cluster,
) -> None:
    await high_priority(cluster)
    await cluster.submit("elastic", 3, cpu="500m", min_count=1)
    await cluster.run()
    for i in range(3):
        await cluster.pod_of("elastic", f"elastic-{i}")
    await cluster.submit("high", 1, cpu="1500m", priorityClassName="high")

    await cluster.run()

    wl = await cluster.wl("elastic")
    assert wl.status.phase is WorkloadPhase.ADMITTED
    assert wl.status.admission is not None
    (assignment,) = wl.status.admission.pod_set_assignments
    assert (assignment.count, len(assignment.placements)) == (1, 1)
    assert Decimal(assignment.resource_usage["cpu"]) == Decimal("0.5")
    shrunk = {c.type: c for c in wl.status.conditions}["Shrunk"]
    assert shrunk.message.startswith("Shrunk by preemption to 1 pods for default/high")
    events = (await cluster.service.list("events", "default")).items
    assert [e["message"] for e in events if e["reason"] == "Shrunk"] == [
        "Shrunk by preemption to 1 pods for default/high"
    ]
    assert (await cluster.wl("high")).status.reason == "Preempting"


async def test_the_preemptor_is_admitted_only_once_the_surplus_pods_are_gone(
    cluster: Cluster,
) -> None:
    await high_priority(cluster)
    await cluster.submit("elastic", 3, cpu="500m", min_count=1)
    await cluster.run()
    for i in range(3):
        await cluster.pod_of("elastic", f"elastic-{i}")
    await cluster.submit("high", 1, cpu="1500m", priorityClassName="high")
    await cluster.run()

    await cluster.run()  # both surplus pods still run: their quota is held
    assert (await cluster.wl("high")).status.phase is WorkloadPhase.PENDING
    await cluster.remove_pod("elastic-2")
    await cluster.run()  # one still runs
    assert (await cluster.wl("high")).status.phase is WorkloadPhase.PENDING
    await cluster.remove_pod("elastic-1")
    await cluster.run()

    high, elastic = await cluster.wl("high"), await cluster.wl("elastic")
    assert high.status.phase is WorkloadPhase.ADMITTED
    assert elastic.status.phase is WorkloadPhase.ADMITTED  # its remaining pod keeps running
    assert elastic.status.admission is not None
    assert elastic.status.admission.pod_set_assignments[0].count == 1
    cq = await cluster.raw("clusterqueues", "default")
    assert cq["status"]["usageText"].startswith("cpu 2/2")


async def flavored(cluster: Cluster) -> None:
    """Nodes gpu-h100 (4 GPUs) and gpu-a100 (8 GPUs) labelled by model; flavor h100 has
    1 GPU of quota, flavor a100 16, listed h100 first."""
    for name, model, gpus in (("gpu-h100", "h100", 4), ("gpu-a100", "a100", 8)):
        await cluster.node(name, cpu="8", gpus=gpus)
        node = await cluster.raw("nodes", name)
        node["metadata"]["labels"] = {"gpu-model": model}
        await cluster.service.update("nodes", node, None, name)
        await cluster.service.create(
            "resourceflavors",
            {
                "apiVersion": V,
                "kind": "ResourceFlavor",
                "metadata": {"name": model},
                "spec": {"nodeLabels": {"gpu-model": model}},
            },
        )
    flavors = [
        {
            "name": model,
            "resources": [{"name": "cpu", "nominalQuota": 8}, {"name": "gpu", "nominalQuota": n}],
        }
        for model, n in (("h100", 1), ("a100", 16))
    ]
    await cluster.service.create(
        "clusterqueues",
        {
            "apiVersion": V,
            "kind": "ClusterQueue",
            "metadata": {"name": "gpus"},
            "spec": {"resourceGroups": [{"coveredResources": ["cpu", "gpu"], "flavors": flavors}]},
        },
    )
    await cluster.service.create(
        "localqueues",
        {
            "apiVersion": V,
            "kind": "LocalQueue",
            "metadata": {"name": "gpus", "namespace": "default"},
            "spec": {"clusterQueue": "gpus"},
        },
        "default",
    )


async def test_a_workload_admitted_to_flavor_a100_lands_only_on_the_a100_node(
    cluster: Cluster,
) -> None:
    await flavored(cluster)
    # Best fit alone would choose the tighter h100 node.
    await cluster.submit("train", 1, cpu="1", gpu=2, queueName="gpus")
    await cluster.run()

    wl = await cluster.wl("train")
    assert wl.status.admission is not None
    (assignment,) = wl.status.admission.pod_set_assignments
    assert assignment.flavors["gpu"] == "a100"
    assert [p.node_name for p in assignment.placements] == ["gpu-a100"]


async def test_fitting_the_quota_but_no_node_of_the_flavor_waits_and_says_which_labels(
    cluster: Cluster,
) -> None:
    await flavored(cluster)
    await cluster.submit("big", 2, cpu="1", gpu=4, queueName="gpus")
    await cluster.submit("more", 1, cpu="1", gpu=2, queueName="gpus")
    await cluster.run()
    assert (await cluster.wl("big")).status.phase is WorkloadPhase.ADMITTED

    wl = await cluster.wl("more")  # a100 quota left; the h100 node has 4 GPUs free
    assert (wl.status.phase, wl.status.reason) == (WorkloadPhase.PENDING, "NoNodeFits")
    assert "no node with labels gpu-model=a100 has room" in wl.status.message
