"""The InferenceService controller's pure parts: what a replica runs, naming, and where
its replicas are reached."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cnai.core.clock import FakeClock
from cnai.core.meta import ObjectMeta
from cnai.core.pods import Pod, PodPhase, PodSpec, PodStatus
from cnai.serving.api import REVISION_LABEL, InferenceService, RevisionStatus
from cnai.serving.autoscaler import Metric
from cnai.serving.controller import (
    PORT_ANNOTATION,
    InferenceServiceReconciler,
    ModelUnavailable,
    _free_index,
    _local_path,
    _next_number,
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
            ready, _ = await self.reconciler._probe(isvc("/srv/m.joblib"), pods)
            return ready

        ready = asyncio.run(probe())
        self.reconciler._publish(self.route, [RevisionStatus(name=REV)], pods, ready, {REV: 100})
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
