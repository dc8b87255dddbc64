"""OpenTelemetry tracing: spans exported over OTLP when an endpoint is configured, and
nothing at all otherwise.

A process that serves (the platform, a model server) calls :func:`configure` once as it
starts. Instrumented code asks the OpenTelemetry API for a tracer (:func:`tracer`), which
is a no-op until then, and checks :func:`enabled` before building what only a recording
span needs (the ``traceparent`` header the gateway sends on).

Configured by OpenTelemetry's own environment variables, so that an existing collector
setup works unchanged:

- ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` turns tracing
  on; ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none`` keeps it off;
- ``OTEL_SERVICE_NAME`` and ``OTEL_RESOURCE_ATTRIBUTES`` name the process;
- ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_BSP_SCHEDULE_DELAY`` and the rest tune the
  exporter and its batching, as they do everywhere.

Spans go over OTLP/HTTP with protobuf, which every collector takes (the OpenTelemetry
Collector, Jaeger, Tempo), in batches from a background thread. Context travels in W3C
``traceparent`` headers: a client's trace continues through the API server, the gateway
and the model server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.context import Context

log = logging.getLogger(__name__)

_provider: Any = None  # the SDK's TracerProvider, once configured


def endpoint(environ: Mapping[str, str] = os.environ) -> str | None:
    """The OTLP endpoint tracing would export to, or None if tracing stays off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "none":
        return None
    found = environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return found or None


def configure(service_name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Export this process's spans if an endpoint is configured; whether it is. The
    service is named ``service_name`` unless ``OTEL_SERVICE_NAME`` says otherwise."""
    global _provider
    if _provider is not None:
        return True
    where = endpoint(environ)
    if where is None:
        return False
    # Imported only here: a process that does not trace never loads the SDK.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from cnai.version import __version__

    # The stable HTTP conventions (http.response.status_code, http.route...) in spans that
    # OpenTelemetry's instrumentations make too, as in those cnai makes itself.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    attributes = {"service.name": service_name, "service.version": __version__}
    if environ.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = environ["OTEL_SERVICE_NAME"]
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _provider = provider
    log.info("tracing: exporting spans of %s over OTLP to %s", attributes["service.name"], where)
    return True


def enabled() -> bool:
    """Whether this process records and exports spans."""
    return _provider is not None


def shutdown() -> None:
    """Export what is still batched, then stop (at the process's end)."""
    if _provider is not None:
        _provider.shutdown()


def tracer(name: str) -> trace.Tracer:
    """The API's tracer for instrumentation ``name`` (a no-op until configured)."""
    return trace.get_tracer(name)


def context_from(headers: Iterable[tuple[bytes, bytes]]) -> Context:
    """The trace context a request carries (its ``traceparent``, ``tracestate``)."""
    carrier = {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in headers
        if name.lower() in (b"traceparent", b"tracestate")
    }
    return propagate.extract(carrier)


def headers_of_current() -> list[tuple[bytes, bytes]]:
    """The headers that carry the current span's context on to the next hop."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in carrier.items()]
