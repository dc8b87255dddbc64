"""The API server's request metrics, as an ASGI middleware.

- ``cnai_apiserver_requests_total{verb,resource,route,code}``: requests answered;
- ``cnai_apiserver_request_duration_seconds{verb,resource,route}``: from the request
  reaching the app to its answer's end (a watch is counted, not timed: it lasts as long
  as its client keeps it).

``verb`` is the Kubernetes one for resource paths (``get``, ``list``, ``watch``,
``create``, ``update``, ``patch``, ``delete``) and the HTTP method elsewhere; ``resource``
is the kind's plural on resource paths and empty elsewhere; ``route`` is the path
template that matched (``/apis/cnai.io/v1alpha1/namespaces/{ns}/{plural}``), empty for a
path no route matched. Every label value comes from the routes and the registered kinds,
never from what a client sent, so clients cannot grow the set of series.

The serving gateway's requests take the front's lane and never reach this middleware;
the gateway counts them itself. Where tracing is on, the request's span (opened by
OpenTelemetry's ASGI middleware around this one) is named after the route here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cnai.core import tracing
from cnai.core.metrics import LATENCY_BUCKETS

_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class RequestMetrics:
    """Counts and times the requests ``app`` answers; ``is_kind(plural)`` tells resource
    paths' plurals from anything else a path parameter holds."""

    def __init__(
        self, app: ASGIApp, registry: CollectorRegistry, is_kind: Callable[[str], bool]
    ) -> None:
        self.app = app
        self.is_kind = is_kind
        self.requests = Counter(
            "cnai_apiserver_requests_total",
            "API requests answered, by verb, resource, route and status code.",
            ["verb", "resource", "route", "code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "cnai_apiserver_request_duration_seconds",
            "Time to answer an API request (watches excluded), by verb, resource and route.",
            ["verb", "resource", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if tracing.enabled():
                    self.name_span(scope)
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            verb, resource, route = self.classify(scope)
            self.requests.labels(verb, resource, route, str(status)).inc()

            if verb != "watch":
                self.seconds.labels(verb, resource, route).observe(time.perf_counter() - started)

    def name_span(self, scope: Scope) -> None:
        """Name the request's span after its route (OpenTelemetry's ASGI middleware
        named it before the router ran, by its path); before the answer ends it."""
        route = self.classify(scope)[2]
        if route:
            span = trace.get_current_span()
            span.update_name(f"{scope.get('method', '')} {route}")
            span.set_attribute("http.route", route)

    def classify(self, scope: Scope) -> tuple[str, str, str]:
        """(verb, resource, route) of a request the app has routed."""
        method: str = scope.get("method", "")
        matched = scope.get("route")
        route: str = getattr(matched, "path", "") if matched is not None else ""
        params = scope.get("path_params") or {}
        plural = params.get("plural")
        if not route or not isinstance(plural, str) or not self.is_kind(plural):
            return method, "", route
        if method in ("GET", "HEAD"):
            if "name" in params:
                return "get", plural, route
            query: bytes = scope.get("query_string", b"")
            parts = query.lower().split(b"&")
            watching = b"watch=true" in parts or b"watch=1" in parts
            return ("watch" if watching else "list"), plural, route
        return _VERBS.get(method, method), plural, route
