"""OpenTelemetry traces from a real platform and a real model server, exported over
OTLP/HTTP to a receiver in this process that decodes them with OpenTelemetry's own
protobuf definitions: a client's trace continues through the API server, the gateway
and the model server."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import joblib  # type: ignore[import-untyped]
import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from cnai.serving.api import SERVICE_LABEL, InferenceService, InferenceServicePhase

from .harness import RunningPlatform, start_platform, unique, wait_until


@dataclass
class Span:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class Receiver:
    """An OTLP/HTTP endpoint: keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        spans, lock = self.spans, self.lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                with lock:
                    spans.extend(_spans(request))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_trace(self, trace_id: str) -> list[Span]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]


def _spans(request: ExportTraceServiceRequest) -> Iterator[Span]:
    for resource_spans in request.resource_spans:
        service = next(
            (
                a.value.string_value
                for a in resource_spans.resource.attributes
                if a.key == "service.name"
            ),
            "",
        )
        for scope in resource_spans.scope_spans:
            for s in scope.spans:
                attributes = {
                    a.key: getattr(a.value, a.value.WhichOneof("value")) for a in s.attributes
                }
                yield Span(
                    service,
                    s.name,
                    s.kind,
                    s.trace_id.hex(),
                    s.span_id.hex(),
                    s.parent_span_id.hex(),
                    attributes,
                )


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture(scope="module")
def traced(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> Iterator[RunningPlatform]:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    running = start_platform(tmp_path_factory.mktemp("cnai-traced"), env=env)
    yield running
    running.stop()


def traceparent() -> tuple[str, str]:
    """A client's trace id and the header that carries it."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, f"00-{trace_id}-{span_id}-01"


SERVER, INTERNAL = 2, 1  # OTLP's SpanKind values


def test_an_api_request_continues_the_clients_trace(
    traced: RunningPlatform, receiver: Receiver
) -> None:
    trace_id, header = traceparent()
    with httpx.Client(base_url=traced.url, timeout=30) as http:
        token = traced.admin_token()
        answer = http.get(
            "/apis/cnai.io/v1alpha1/namespaces/default/secrets",
            headers={"Authorization": f"Bearer {token}", "traceparent": header},
        )
    assert answer.status_code == 200
    wait_until(lambda: bool(receiver.of_trace(trace_id)), 20, "the request's span")
    (span,) = receiver.of_trace(trace_id)
    assert span.service == "cnai-platform"
    assert span.kind == SERVER
    assert span.name == "GET /apis/cnai.io/v1alpha1/namespaces/{ns}/{plural}"
    assert span.parent_id == header.split("-")[2]
    assert span.attributes["http.route"] == "/apis/cnai.io/v1alpha1/namespaces/{ns}/{plural}"
    assert span.attributes["http.response.status_code"] == 200


def test_reconciles_are_spans(traced: RunningPlatform, receiver: Receiver) -> None:
    def reconciled() -> list[Span]:
        with receiver.lock:
            return [s for s in receiver.spans if s.name == "reconcile scheduler"]

    wait_until(lambda: bool(reconciled()), 20, "a scheduler reconcile's span")
    span = reconciled()[0]
    assert (span.service, span.kind) == ("cnai-platform", INTERNAL)
    assert span.attributes["cnai.controller"] == "scheduler"
    assert span.attributes["cnai.result"] in ("success", "requeue_after")


def test_an_inference_request_is_one_trace_through_gateway_and_model_server(
    traced: RunningPlatform, receiver: Receiver, tmp_path: Path
) -> None:
    x = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]] * 4)
    joblib.dump(LogisticRegression(max_iter=300).fit(x, [0, 1] * 4), tmp_path / "m.joblib")
    name = unique("traced")
    body = {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {"predictor": {"model": str(tmp_path / "m.joblib"), "format": "sklearn"}},
    }
    with traced.client() as client:
        client.create(body, "default")
        try:
            wait_until(
                lambda: (
                    client.get(InferenceService, name, "default").status.phase
                    is InferenceServicePhase.READY
                ),
                60,
                "the service ready",
            )
            trace_id, header = traceparent()
            with httpx.Client(base_url=traced.url, timeout=30) as http:
                answer = http.post(
                    f"/serving/default/{name}/v2/models/{name}/infer",
                    headers={
                        "Authorization": f"Bearer {traced.admin_token()}",
                        "traceparent": header,
                    },
                    json={
                        "inputs": [
                            {
                                "name": "x",
                                "shape": [1, 4],
                                "datatype": "FP64",
                                "data": [[5.1, 3.5, 1.4, 0.2]],
                            }
                        ]
                    },
                )
            assert answer.status_code == 200, answer.text

            def both() -> bool:
                services = {s.service for s in receiver.of_trace(trace_id)}
                return {"cnai-platform", "cnai-model-server"} <= services

            wait_until(both, 30, "the gateway's and the model server's spans")
        finally:
            client.delete(InferenceService, name, "default")
            wait_until(
                lambda: not client.list("pod", "default", label_selector=SERVICE_LABEL).items,
                30,
                "the replicas stopped",
            )
    spans = receiver.of_trace(trace_id)
    (gateway,) = [s for s in spans if s.service == "cnai-platform"]
    (model,) = [s for s in spans if s.service == "cnai-model-server"]
    assert gateway.name == "POST /serving/{ns}/{name}/{path:path}"
    assert gateway.kind == SERVER
    assert gateway.parent_id == header.split("-")[2]
    assert gateway.attributes["cnai.inferenceservice"] == f"default/{name}"
    assert gateway.attributes["cnai.revision"] == f"{name}-00001"
    assert gateway.attributes["http.response.status_code"] == 200
    assert model.parent_id == gateway.span_id
    assert model.name == f"POST infer {name}"
    assert model.attributes["cnai.model"] == name
    assert model.attributes["http.response.status_code"] == 200
