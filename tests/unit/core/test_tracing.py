"""Tracing's switch (OpenTelemetry's environment variables) and W3C context in headers.
Export itself is tested against a real platform (tests/integration/test_tracing.py)."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from cnai.core import tracing


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, None, id="nothing-configured"),
        pytest.param({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, "http://c:4318", id="on"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"},
            "http://c:4318/v1/traces",
            id="traces-only",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"},
            None,
            id="sdk-disabled",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"},
            None,
            id="no-exporter",
        ),
    ],
)
def test_tracing_is_on_only_with_an_endpoint(environ: dict[str, str], expected: str | None) -> None:
    assert tracing.endpoint(environ) == expected


def test_without_an_endpoint_nothing_is_configured() -> None:
    assert tracing.configure("test", {}) is False
    assert tracing.enabled() is False
    assert tracing.headers_of_current() == []  # no span: nothing to carry on


def test_a_requests_context_is_carried_on_to_the_next_hop() -> None:
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    incoming = [
        (b"content-type", b"application/json"),
        (b"Traceparent", f"00-{trace_id}-{parent}-01".encode()),
    ]
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("hop", context=tracing.context_from(incoming)) as span:
        context = span.get_span_context()
        assert format(context.trace_id, "032x") == trace_id
        assert span.parent is not None
        assert format(span.parent.span_id, "016x") == parent
        (header,) = tracing.headers_of_current()
    assert header == (b"traceparent", f"00-{trace_id}-{context.span_id:016x}-01".encode())
    assert not trace.get_current_span().get_span_context().is_valid
