"""The InferenceService controller's pure parts: what a replica runs, naming, and where
its replicas are reached; and, stepped tick by tick against a real store, a runtime's
own replica sets (one per revision) in place of cnai Pods."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from cnai.core.clock import FakeClock
from cnai.core.controllers.types import Request
from cnai.core.events import EventRecorder
from cnai.core.kernel import register_kernel
from cnai.core.kinds import Namespace
from cnai.core.meta import ObjectMeta
from cnai.core.pods import Pod, PodPhase, PodSpec, PodStatus
from cnai.core.registry import KindInfo, Registry
from cnai.core.resources import ResourceService
from cnai.core.runtime import ReplicaEndpoint, ReplicaSets, ReplicaSetSpec
from cnai.core.store.sqlite import SQLiteStore
from cnai.scheduling import register_kinds
from cnai.serving.api import (
    REVISION_LABEL,
    InferenceService,
    InferenceServicePhase,
    InferenceServiceStatus,
    RevisionStatus,
)
from cnai.serving.autoscaler import Metric
from cnai.serving.controller import (
    COMPONENT,
    PORT_ANNOTATION,
    InferenceServiceReconciler,
    ModelUnavailable,
    _free_index,
    _local_path,
    _next_number,
    instance_of,
)
from cnai.serving.revisions import template_hash
from cnai.serving.state import Route, ServingState


def isvc(model: str, **spec: Any) -> InferenceService:
    return InferenceService.model_validate(
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": "svc", "namespace": "default"},
            "spec": {"predictor": {"model": model}, **spec},
        }
    )


def template(service: InferenceService) -> dict[str, Any]:
    none: Any = None  # a path model touches neither the store nor events
    reconciler = InferenceServiceReconciler(none, FakeClock(), none, ServingState())
    return asyncio.run(reconciler._template(service))


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("m.joblib", "sklearn"), ("m.onnx", "onnx"), ("m.pt", "torchscript"), ("m.pkl", "sklearn")],
)
def test_a_path_model_gets_its_format_from_its_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    (tmp_path / name).write_bytes(b"x")
    got = template(isvc(str(tmp_path / name)))
    assert (got["path"], got["format"], got["ref"]) == (
        str(tmp_path / name),
        fmt,
        str(tmp_path / name),
    )


def test_a_missing_model_file_is_unavailable_with_its_path(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable, match="does not exist"):
        template(isvc(str(tmp_path / "nowhere.joblib")))
    with pytest.raises(ModelUnavailable, match="only local"):
        template(isvc("s3://bucket/m.joblib"))


def test_what_a_replica_runs_changes_with_the_predictor_and_batching_only(tmp_path: Path) -> None:
    model = tmp_path / "m.joblib"
    model.write_bytes(b"x")
    base = template_hash(template(isvc(str(model))))
    scaled = template_hash(template(isvc(str(model), maxReplicas=5, canaryTrafficPercent=10)))
    batched = template_hash(template(isvc(str(model), batching={"maxBatchSize": 8})))
    assert scaled == base  # replicas and traffic make no new revision
    assert batched != base


def test_revision_numbers_and_replica_indexes() -> None:
    assert _next_number([]) == 1
    assert _next_number([RevisionStatus(name="svc-00007")]) == 8
    pods = [
        Pod(metadata=ObjectMeta(name=f"svc-00001-{i}"), spec=PodSpec(command=["x"])) for i in (0, 2)
    ]
    assert _free_index(pods) == 1
    assert _free_index([]) == 0


def test_model_uris_to_local_paths() -> None:
    assert _local_path("file:///srv/m.onnx") == "/srv/m.onnx"
    assert _local_path("/srv/m.onnx") == "/srv/m.onnx"
    assert _local_path("s3://b/m.onnx") is None


# -- where replicas are reached ------------------------------------------------------------

REV = "svc-00001"


def replica(pod_ip: str = "", name: str = f"{REV}-0") -> Pod:
    """A running replica on port 40100, at ``pod_ip`` where its runtime reported one."""
    return Pod(
        metadata=ObjectMeta(
            name=name,
            namespace="default",
            labels={REVISION_LABEL: REV},
            annotations={PORT_ANNOTATION: "40100"},
        ),
        spec=PodSpec(command=["python", "-m", "cnai.serving.server"]),
        status=PodStatus(phase=PodPhase.RUNNING, pod_ip=pod_ip),
    )


class Replicas:
    """A reconciler whose probes reach a fake HTTP client, and the route it publishes."""

    def __init__(self) -> None:
        self.probed: list[str] = []
        none: Any = None  # probing and publishing touch neither the store nor events
        state = ServingState()
        self.reconciler = InferenceServiceReconciler(none, FakeClock(), none, state)
        self.reconciler._http = httpx.AsyncClient(transport=httpx.MockTransport(self._answer))
        self.route = Route("default", "svc")
        state.revision(self.route, REV, Metric.CONCURRENCY)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.probed.append(str(request.url))
        return httpx.Response(200, json={"name": "svc", "ready": True})

    def step(self, pods: list[Pod]) -> set[str]:
        """Probe the pods, publish them; the names of the ready ones."""

        async def probe() -> set[str]:
            ready, _ = await self.reconciler._probe(isvc("/srv/m.joblib"), seen)
            return ready

        seen = [instance_of(p) for p in pods]
        ready = asyncio.run(probe())
        self.reconciler._publish(self.route, [RevisionStatus(name=REV)], seen, ready, {REV: 100})
        return ready

    def url(self, name: str = f"{REV}-0") -> str:
        return self.route.revisions[REV].replicas[name].url


@pytest.fixture
def replicas() -> Iterator[Replicas]:
    found = Replicas()
    yield found
    asyncio.run(found.reconciler.close())


@pytest.mark.parametrize(
    ("pod_ip", "url"),
    [
        pytest.param("10.244.1.7", "http://10.244.1.7:40100", id="a-kubernetes-pod-at-its-ip"),
        pytest.param("", "http://127.0.0.1:40100", id="a-local-process-on-loopback"),
        pytest.param("fd00::7", "http://[fd00::7]:40100", id="an-ipv6-pod-ip-in-brackets"),
    ],
)
def test_replicas_are_probed_and_routed_at_their_pods_ip(
    replicas: Replicas, pod_ip: str, url: str
) -> None:
    assert replicas.step([replica(pod_ip)]) == {f"{REV}-0"}
    assert replicas.probed == [f"{url}/v2/models/svc/ready"]
    assert replicas.url() == url


def test_a_replica_gets_its_pods_ip_once_known_and_keeps_its_requests(
    replicas: Replicas,
) -> None:
    replicas.step([replica()])
    routed = replicas.route.revisions[REV].replicas[f"{REV}-0"]
    routed.in_flight = 2  # requests the gateway sent before the IP was known
    replicas.step([replica("10.244.1.7")])
    assert replicas.route.revisions[REV].replicas[f"{REV}-0"] is routed
    assert (routed.url, routed.in_flight, routed.ready) == ("http://10.244.1.7:40100", 2, True)


# -- a runtime's own replica sets (Kubernetes Deployments) ---------------------------------

REV2 = "svc-00002"


@dataclass
class Sets:
    """A runtime's replica sets in memory: the count each set was given, and its
    replicas, which the test starts as a Deployment and its kubelets would."""

    counts: dict[str, int] = field(default_factory=dict)
    specs: dict[str, ReplicaSetSpec] = field(default_factory=dict)
    replicas: dict[str, list[ReplicaEndpoint]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)

    async def apply_replicas(self, spec: ReplicaSetSpec) -> None:
        self.counts[spec.name], self.specs[spec.name] = spec.replicas, spec
        self.replicas[spec.name] = self.replicas.get(spec.name, [])[: spec.replicas]

    async def replica_endpoints(self, namespace: str, name: str) -> list[ReplicaEndpoint]:
        return list(self.replicas.get(name, []))

    async def delete_replicas(self, namespace: str, name: str) -> None:
        if self.counts.pop(name, None) is not None:
            self.deleted.append(name)
        self.replicas.pop(name, None)

    def start(self, name: str) -> None:
        """Every replica the set asks for runs, at a Pod IP of its own."""
        have = self.replicas.setdefault(name, [])
        for i in range(len(have), self.counts.get(name, 0)):
            ip = f"10.244.{name[-1]}.{i + 1}"
            have.append(ReplicaEndpoint(f"{name}-pod{i}", ip, 8080, running=True))


@dataclass
class Served:
    """The reconciler over a real store, with the scheduler's part played by the test."""

    service: ResourceService
    reconciler: InferenceServiceReconciler
    sets: Sets
    model: Path
    now: list[float]

    async def create(self, **spec: Any) -> None:
        await self.service.create("inferenceservices", isvc(str(self.model), **spec).to_dict())

    async def change(self, **spec: Any) -> None:
        raw = await self.service.get("inferenceservices", "default", "svc")
        raw["spec"].update(spec)
        await self.service.update("inferenceservices", raw, "default", "svc")

    async def admit(self, workload: str, count: int) -> None:
        """Be the scheduler: the Workload is admitted for ``count`` replicas."""
        wl = await self.service.get("workloads", "default", workload)
        assignment = {"name": "replicas", "count": count}
        wl["status"] = {
            "phase": "Admitted",
            "admission": {"clusterQueue": "q", "podSetAssignments": [assignment]},
        }
        await self.service.update("workloads", wl, "default", workload, status=True)

    async def tick(self, seconds: float = 2.0) -> InferenceServiceStatus:
        self.now[0] += seconds
        await self.reconciler.reconcile(Request("default", "svc"))
        raw = await self.service.get("inferenceservices", "default", "svc")
        return InferenceService.model_validate(raw).status

    def urls(self, revision: str = REV) -> dict[str, tuple[str, bool]]:
        route = self.reconciler.state.routes[("default", "svc")]
        return {n: (r.url, r.ready) for n, r in route.revisions[revision].replicas.items()}

    async def workloads(self) -> list[str]:
        listed = await self.service.list("workloads", "default")
        return [w["metadata"]["name"] for w in listed.items]


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    registry = Registry()
    register_kernel(registry)
    register_kinds(registry)
    registry.register(KindInfo(InferenceService))
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "state.db", clock=clock.now)
    service = ResourceService(registry, store)
    await service.create("namespaces", Namespace.new("default").to_dict())
    now = [1000.0]
    sets = Sets()
    assert isinstance(sets, ReplicaSets)
    reconciler = InferenceServiceReconciler(
        service,
        clock,
        EventRecorder(store, COMPONENT),
        ServingState(),
        "http://cnai.cnai-system.svc:8470",
        monotonic=lambda: now[0],
        replica_sets=sets,
    )
    ready = httpx.Response(200, json={"name": "svc", "ready": True})
    reconciler._http = httpx.AsyncClient(transport=httpx.MockTransport(lambda _: ready))
    model = tmp_path / "m.joblib"
    model.write_bytes(b"x")
    yield Served(service, reconciler, sets, model, now)
    await reconciler.close()
    await store.close()


@pytest.mark.anyio
async def test_a_revision_is_one_replica_set_of_the_admitted_count(served: Served) -> None:
    await served.create(minReplicas=2, maxReplicas=3)
    status = await served.tick()
    assert (status.revisions[0].replicas, served.sets.counts) == (2, {REV: 0})  # queued
    await served.admit(REV, 1)  # partially: quota for one
    await served.tick()
    assert served.sets.counts == {REV: 1}
    await served.admit(REV, 2)
    await served.tick()
    assert served.sets.counts == {REV: 2}
    served.sets.start(REV)
    status = await served.tick()
    assert (status.revisions[0].ready_replicas, status.phase) == (2, InferenceServicePhase.READY)
    assert served.urls() == {
        f"{REV}-pod0": ("http://10.244.1.1:8080", True),
        f"{REV}-pod1": ("http://10.244.1.2:8080", True),
    }
    assert (await served.service.list("pods", "default")).items == []  # no cnai Pods
    spec = served.sets.specs[REV]
    assert spec.pod["spec"]["command"][:3] == ["python", "-m", "cnai.serving.server"]
    assert spec.env == {
        "CNAI_SERVER": "http://cnai.cnai-system.svc:8470",
        "CNAI_NAMESPACE": "default",
    }


@pytest.mark.anyio
async def test_a_replica_set_scales_to_zero_and_back_through_the_queue(served: Served) -> None:
    await served.create(minReplicas=0, maxReplicas=2)
    await served.tick()
    await served.admit(REV, 1)
    await served.tick()
    served.sets.start(REV)
    assert (await served.tick()).revisions[0].ready_replicas == 1
    status = await served.tick(seconds=1000)  # no traffic past the window and the grace
    assert (status.revisions[0].replicas, status.phase) == (0, InferenceServicePhase.READY)
    assert (served.sets.counts, await served.workloads()) == ({REV: 0}, [])
    await served.change(minReplicas=1)
    await served.tick()
    assert (served.sets.counts, await served.workloads()) == ({REV: 0}, [REV])  # queued
    await served.admit(REV, 1)
    await served.tick()
    assert served.sets.counts == {REV: 1}


@pytest.mark.anyio
async def test_a_dropped_revisions_set_is_deleted_and_the_rest_with_the_service(
    served: Served, tmp_path: Path
) -> None:
    await served.create(minReplicas=1)
    await served.tick()
    await served.admit(REV, 1)
    await served.tick()
    served.sets.start(REV)
    await served.tick()
    other = tmp_path / "other.joblib"
    other.write_bytes(b"y")
    await served.change(predictor={"model": str(other)})
    status = await served.tick()
    assert [(r.name, r.traffic_percent) for r in status.revisions] == [(REV, 100), (REV2, 0)]
    await served.admit(REV2, 1)
    await served.tick()
    served.sets.start(REV2)
    status = await served.tick()
    assert [(r.name, r.traffic_percent) for r in status.revisions] == [(REV2, 100)]
    assert (served.sets.counts, served.sets.deleted) == ({REV2: 1}, [REV])
    assert served.urls(REV2) == {f"{REV2}-pod0": ("http://10.244.2.1:8080", True)}
    await served.service.delete("inferenceservices", "default", "svc")
    await served.reconciler.reconcile(Request("default", "svc"))
    assert (served.sets.counts, served.sets.deleted) == ({}, [REV, REV2])
