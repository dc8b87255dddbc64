"""The scheduler's shell stepped pass by pass against a real store and a fake clock.

Workloads are written as a job controller would write them; pods are written as the
kubelet would leave them. Nothing sleeps: each ``run()`` is one scheduling pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from cnai.core.clock import FakeClock
from cnai.core.controllers.types import Request
from cnai.core.errors import Conflict
from cnai.core.events import EventRecorder
from cnai.core.kernel import register_kernel
from cnai.core.kinds import Namespace
from cnai.core.meta import Condition
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.store.sqlite import SQLiteStore
from cnai.scheduling import register_kinds
from cnai.scheduling.api import WORKLOAD_ANNOTATION, Workload, WorkloadPhase
from cnai.scheduling.controller import SCHEDULER_KEY, SchedulerReconciler, scheduler_controller
from cnai.scheduling.metrics import SchedulerMetrics, pending_since

pytestmark = pytest.mark.anyio
V = "cnai.io/v1alpha1"


class Cluster:
    """A store with the scheduling kinds, one namespace ``default``, and the scheduler."""

    def __init__(self, service: ResourceService, clock: FakeClock) -> None:
        self.service = service
        self.clock = clock
        recorder = EventRecorder(service.store, "scheduler", clock=clock.now)
        self.scheduler = SchedulerReconciler(service, clock, recorder)

    async def run(self) -> None:
        await self.scheduler.reconcile(SCHEDULER_KEY)

    async def node(self, name: str, cpu: str, memory: str = "16Gi", gpus: int = 0) -> None:
        created = await self.service.create(
            "nodes", {"apiVersion": V, "kind": "Node", "metadata": {"name": name}}
        )
        created["status"] = {
            "allocatable": {"cpu": cpu, "memory": memory, "gpu": str(gpus)},
            "gpus": [{"index": i, "name": "H200"} for i in range(gpus)],
        }
        await self.service.update("nodes", created, None, name, status=True)

    async def submit(
        self, name: str, count: int, cpu: str = "1", min_count: int | None = None, **spec: Any
    ) -> None:
        pod_set: dict[str, Any] = {"name": "main", "count": count, "requests": {"cpu": cpu}}
        if min_count is not None:
            pod_set["minCount"] = min_count
        if "gpu" in spec:
            pod_set["requests"]["gpu"] = spec.pop("gpu")
        body = {
            "apiVersion": V,
            "kind": "Workload",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"queueName": "default", "podSets": [pod_set], **spec},
        }
        await self.service.create("workloads", body, "default")

    async def wl(self, name: str) -> Workload:
        return Workload.model_validate(await self.service.get("workloads", "default", name))

    async def raw(self, plural: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        return await self.service.get(plural, namespace, name)

    async def pod_of(
        self, workload: str, name: str, phase: str = "Running", grace: int = 30
    ) -> None:
        """A pod of ``workload`` as the job controller and kubelet leave it."""
        body = {
            "apiVersion": V,
            "kind": "Pod",
            "metadata": {"name": name, "annotations": {WORKLOAD_ANNOTATION: workload}},
            "spec": {
                "command": ["true"],
                "nodeName": "node-a",
                "terminationGracePeriodSeconds": grace,
            },
        }
        created = await self.service.create("pods", body, "default")
        created["status"] = {"phase": phase}
        await self.service.update("pods", created, "default", name, status=True)

    async def remove_pod(self, name: str) -> None:
        pod = await self.service.get("pods", "default", name)
        pod["metadata"]["finalizers"] = []
        await self.service.update("pods", pod, "default", name)
        await self.service.delete("pods", "default", name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def service(tmp_path: Path, clock: FakeClock) -> AsyncIterator[ResourceService]:
    registry = Registry()
    register_kernel(registry)
    register_kinds(registry)
    store = SQLiteStore(tmp_path / "state.db", clock=clock.now)
    svc = ResourceService(registry, store)
    await svc.create("namespaces", Namespace.new("default").to_dict())
    yield svc
    await store.close()


@pytest.fixture
async def cluster(service: ResourceService, clock: FakeClock) -> Cluster:
    c = Cluster(service, clock)
    await c.node("node-a", cpu="2", gpus=2)
    await c.run()
    return c


async def test_first_pass_creates_default_queues_sized_from_the_node(cluster: Cluster) -> None:
    cq = await cluster.raw("clusterqueues", "default")
    quotas = cq["spec"]["resourceGroups"][0]["flavors"][0]
    assert quotas["name"] == "default"
    assert {r["name"]: r["nominalQuota"] for r in quotas["resources"]} == {
        "cpu": "2",
        "memory": "16Gi",
        "gpu": "2",
    }
    assert cq["spec"]["preemption"]["withinClusterQueue"] == "LowerPriority"
    assert cq["status"]["usageText"] == "cpu 0/2 memory 0/16Gi gpu 0/2"
    lq = await cluster.raw("localqueues", "default", "default")
    assert lq["spec"]["clusterQueue"] == "default"

    await cluster.service.create("namespaces", Namespace.new("team-b").to_dict())
    await cluster.service.delete("clusterqueues", None, "default")
    await cluster.run()

    assert (await cluster.raw("localqueues", "default", "team-b"))["spec"]["clusterQueue"] == (
        "default"
    )
    assert (await cluster.service.list("clusterqueues")).items == []  # bootstrapped once


async def test_no_node_no_default_queue_until_one_appears(
    service: ResourceService, clock: FakeClock
) -> None:
    c = Cluster(service, clock)
    await c.run()
    assert (await service.list("clusterqueues")).items == []
    await c.node("node-a", cpu="4")
    await c.run()
    assert (await c.raw("clusterqueues", "default"))["spec"]["resourceGroups"]


async def test_admitted_workload_gets_quota_and_a_placement_per_pod(cluster: Cluster) -> None:
    await cluster.submit("w", 2, cpu="500m", gpu=1)
    await cluster.run()

    wl = await cluster.wl("w")
    assert wl.status.phase is WorkloadPhase.ADMITTED
    assert wl.status.admission is not None
    (assignment,) = wl.status.admission.pod_set_assignments
    assert (wl.status.admission.cluster_queue, assignment.count) == ("default", 2)
    assert [(p.node_name, p.gpus) for p in assignment.placements] == [
        ("node-a", [0]),
        ("node-a", [1]),
    ]
    assert {c.type: c.status for c in wl.status.conditions} == {
        "QuotaReserved": "True",
        "Admitted": "True",
    }
    cq = await cluster.raw("clusterqueues", "default")
    assert cq["status"]["usageText"] == "cpu 1/2 memory 0/16Gi gpu 2/2"
    assert (cq["status"]["admittedWorkloads"], cq["status"]["pendingWorkloads"]) == (1, 0)
    cpu = cq["status"]["flavorsUsage"][0]["resources"][0]
    assert cpu == {"name": "cpu", "nominal": "2", "borrowed": "0", "used": "1", "pending": "0"}


async def test_gang_larger_than_free_quota_waits_with_words_and_no_rewrites(
    cluster: Cluster,
) -> None:
    await cluster.submit("small", 1)
    await cluster.run()
    await cluster.submit("gang", 2)
    await cluster.run()

    wl = await cluster.wl("gang")
    assert (wl.status.phase, wl.status.reason) == (WorkloadPhase.PENDING, "NoQuota")
    assert wl.status.message == ("needs 2 cpu in flavor default, clusterqueue default has 1 free")
    cq = await cluster.raw("clusterqueues", "default")
    assert cq["status"]["pendingWorkloads"] == 1
    assert cq["status"]["flavorsUsage"][0]["resources"][0]["pending"] == "2"

    await cluster.run()
    assert (await cluster.wl("gang")).metadata.resource_version == wl.metadata.resource_version

    # The small one finishes: the gang fits.
    small = await cluster.raw("workloads", "small", "default")
    small["status"]["phase"] = "Finished"
    await cluster.service.update("workloads", small, "default", "small", status=True)
    await cluster.run()
    assert (await cluster.wl("gang")).status.phase is WorkloadPhase.ADMITTED


async def test_partial_admission_takes_the_largest_count_that_fits(cluster: Cluster) -> None:
    await cluster.submit("elastic", 3, min_count=1)
    await cluster.run()
    wl = await cluster.wl("elastic")
    assert wl.status.admission is not None
    (assignment,) = wl.status.admission.pod_set_assignments
    assert (assignment.count, len(assignment.placements)) == (2, 2)


async def test_high_priority_preempts_and_the_victim_is_requeued_once_its_pods_stop(
    cluster: Cluster,
) -> None:
    await cluster.service.create(
        "priorityclasses",
        {"apiVersion": V, "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000},
    )
    await cluster.submit("low", 2)
    await cluster.run()
    await cluster.pod_of("low", "low-0")
    await cluster.submit("high", 2, priorityClassName="high")

    await cluster.run()

    low, high = await cluster.wl("low"), await cluster.wl("high")
    assert low.status.phase is WorkloadPhase.EVICTING
    assert low.status.message == (
        "evicted by default/high (priority 1000) to free quota in clusterqueue default"
    )
    assert {c.type: (c.status, c.reason) for c in low.status.conditions}["Preempted"] == (
        "True",
        "InClusterQueue",
    )
    assert (high.status.phase, high.status.reason) == (WorkloadPhase.PENDING, "Preempting")

    await cluster.run()  # its pod still runs: it keeps its quota
    assert (await cluster.wl("low")).status.phase is WorkloadPhase.EVICTING

    await cluster.remove_pod("low-0")
    await cluster.run()

    low, high = await cluster.wl("low"), await cluster.wl("high")
    assert (low.status.phase, low.status.admission) == (WorkloadPhase.PENDING, None)
    assert low.status.reason == "NoQuota"
    assert high.status.phase is WorkloadPhase.ADMITTED


async def test_the_preemptor_is_told_the_victims_own_grace_period(cluster: Cluster) -> None:
    await cluster.service.create(
        "priorityclasses",
        {"apiVersion": V, "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000},
    )
    await cluster.submit("low", 2)
    await cluster.run()
    await cluster.pod_of("low", "low-0", grace=5)
    await cluster.pod_of("low", "low-1", grace=12)
    await cluster.submit("high", 2, priorityClassName="high")

    await cluster.run()

    high = await cluster.wl("high")
    assert high.status.reason == "Preempting"
    assert "grace period up to 12s" in high.status.message


async def test_bound_standalone_pods_leave_no_room_on_the_node(cluster: Cluster) -> None:
    body = {
        "apiVersion": V,
        "kind": "Pod",
        "metadata": {"name": "standalone"},
        "spec": {
            "command": ["true"],
            "nodeName": "node-a",
            "resources": {"requests": {"cpu": "2"}},
        },
    }
    await cluster.service.create("pods", body, "default")
    await cluster.submit("w", 1)
    await cluster.run()
    wl = await cluster.wl("w")
    assert (wl.status.phase, wl.status.reason) == (WorkloadPhase.PENDING, "NoNodeFits")
    assert "no node has room" in wl.status.message


async def test_a_workload_without_requests_is_admitted_at_once(cluster: Cluster) -> None:
    body = {
        "apiVersion": V,
        "kind": "Workload",
        "metadata": {"name": "free", "namespace": "default"},
        "spec": {"queueName": "default", "podSets": [{"name": "main", "count": 5}]},
    }
    await cluster.service.create("workloads", body, "default")
    await cluster.run()
    assert (await cluster.wl("free")).status.phase is WorkloadPhase.ADMITTED


async def test_a_missing_queue_is_named_in_the_reason(cluster: Cluster) -> None:
    await cluster.submit("lost", 1, queueName="nope")
    await cluster.run()
    wl = await cluster.wl("lost")
    assert wl.status.reason == "Inadmissible"
    assert "queue nope" in wl.status.message


def test_the_factory_watches_everything_a_pass_reads() -> None:
    from types import SimpleNamespace
    from typing import cast

    from cnai.core.controllers.types import ControllerContext

    ctx = cast(
        ControllerContext,
        SimpleNamespace(
            service=object(), clock=FakeClock(), recorder=lambda _: object(), services={}
        ),
    )
    spec = scheduler_controller(ctx)
    assert spec.kind == "clusterqueues"
    watched = {plural for plural, _ in spec.watches}
    assert watched == {
        "workloads",
        "localqueues",
        "priorityclasses",
        "nodes",
        "pods",
        "namespaces",
        "resourceflavors",
    }
    assert all(mapper({}) == [Request(None, "scheduler")] for _, mapper in spec.watches)


def test_register_adds_the_scheduler_where_the_platform_runs_controllers() -> None:
    from types import SimpleNamespace

    import cnai.scheduling

    p = SimpleNamespace(registry=Registry(), controller_factories=[])
    cnai.scheduling.register(p)
    assert p.controller_factories == [scheduler_controller]
    assert p.registry.by_plural("workloads") is not None


async def test_a_wait_whose_status_write_failed_is_decided_again_not_skipped(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workload skipped as still inadmissible keeps the status it has, so one whose
    NoQuota status could not be written (a conflict) must not be skipped next pass."""
    await cluster.submit("small", 1)
    await cluster.run()
    real_update = cluster.service.update
    failed: list[str] = []

    async def conflicting(plural: str, body: dict[str, Any], *args: Any, **kw: Any) -> Any:
        if plural == "workloads" and body["metadata"]["name"] == "gang" and not failed:
            failed.append("gang")
            raise Conflict("the object has been modified")
        return await real_update(plural, body, *args, **kw)

    monkeypatch.setattr(cluster.service, "update", conflicting)
    await cluster.submit("gang", 2)
    await cluster.run()
    assert failed == ["gang"]
    assert (await cluster.wl("gang")).status.reason == ""  # the write was lost
    await cluster.run()
    assert (await cluster.wl("gang")).status.reason == "NoQuota"


# -- metrics -------------------------------------------------------------------------


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_admissions_are_counted_with_their_wait(cluster: Cluster) -> None:
    registry = CollectorRegistry()
    cluster.scheduler.metrics = SchedulerMetrics(registry)
    await cluster.submit("a", 1)
    cluster.clock.advance(12)
    await cluster.run()

    queue = {"cluster_queue": "default"}
    assert sample(registry, "cnai_scheduler_admissions_total", **queue) == 1
    assert sample(registry, "cnai_scheduler_admission_wait_seconds_count", **queue) == 1
    assert sample(registry, "cnai_scheduler_admission_wait_seconds_sum", **queue) == 12
    bucket = {**queue, "le": "10.0"}
    assert sample(registry, "cnai_scheduler_admission_wait_seconds_bucket", **bucket) == 0

    await cluster.run()  # nothing new: nothing counted again
    assert sample(registry, "cnai_scheduler_admissions_total", **queue) == 1


async def test_a_preemption_is_counted_by_the_victims_queue_and_reason(cluster: Cluster) -> None:
    registry = CollectorRegistry()
    cluster.scheduler.metrics = SchedulerMetrics(registry)
    await cluster.service.create(
        "priorityclasses",
        {"apiVersion": V, "kind": "PriorityClass", "metadata": {"name": "high"}, "value": 1000},
    )
    await cluster.submit("low", 2)
    await cluster.run()
    await cluster.pod_of("low", "low-0")
    await cluster.submit("high", 2, priorityClassName="high")
    await cluster.run()
    await cluster.run()  # the victim's pod still runs: no second preemption

    labels = {"cluster_queue": "default", "reason": "InClusterQueue"}
    assert sample(registry, "cnai_scheduler_preemptions_total", **labels) == 1
    assert sample(registry, "cnai_scheduler_admissions_total", cluster_queue="default") == 1

    await cluster.remove_pod("low-0")
    await cluster.run()  # the preemptor gets the quota
    assert sample(registry, "cnai_scheduler_admissions_total", cluster_queue="default") == 2


def test_a_workload_waits_from_its_last_eviction_else_its_creation() -> None:
    created = datetime(2026, 1, 1, tzinfo=UTC)
    wl = Workload.model_validate(
        {
            "apiVersion": V,
            "kind": "Workload",
            "metadata": {"name": "w", "namespace": "default", "creationTimestamp": created},
        }
    )
    assert pending_since(wl) == created
    evicted = created + timedelta(minutes=5)
    wl.status.conditions.append(
        Condition(type="Evicted", status="True", reason="Preempted", last_transition_time=evicted)
    )
    assert pending_since(wl) == evicted


async def test_hand_off_admits_every_workload_beyond_cnais_quota(
    service: ResourceService, clock: FakeClock
) -> None:
    """With Kueue deciding (operator mode, --admission kueue), cnai's quota is not the
    gate: every pending Workload is admitted onto the runtime's node at once, so its
    pods reach the cluster, where Kueue holds them until it admits the group."""
    c = Cluster(service, clock)
    recorder = EventRecorder(service.store, "scheduler", clock=clock.now)
    c.scheduler = SchedulerReconciler(service, clock, recorder, handoff="kueue")
    await c.node("kubernetes", cpu="2")
    await c.submit("small", count=1, cpu="1")
    await c.submit("too-big", count=3, cpu="4")  # 12 cpu: far beyond the node's 2
    await c.run()
    for name, pods in (("small", 1), ("too-big", 3)):
        wl = await c.wl(name)
        assert wl.status.phase is WorkloadPhase.ADMITTED, name
        assert wl.status.admission is not None
        assert wl.status.admission.cluster_queue == "kueue"
        (assignment,) = wl.status.admission.pod_set_assignments
        assert assignment.count == pods
        assert [p.node_name for p in assignment.placements] == ["kubernetes"] * pods
    events = (await service.list("events", "default")).items
    assert any(e["message"] == "handed to kueue" for e in events)
    before = (await c.raw("workloads", "small", "default"))["metadata"]["resourceVersion"]
    await c.run()  # already admitted: nothing to write
    assert (await c.raw("workloads", "small", "default"))["metadata"]["resourceVersion"] == before
