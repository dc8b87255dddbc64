"""The serving gateway: one stable URL per InferenceService, ``/serving/{ns}/{name}/...``.

A request is authorized (``get`` on ``inferenceservices`` in its namespace), then routed
by the :class:`~cnai.serving.state.Route` the InferenceService controller publishes: a
revision drawn by its share of the traffic, then that revision's ready replica with the
fewest requests in flight (:class:`~cnai.serving.revisions.Picker`). The request goes
to ``REPLICA_URL/PATH?QUERY`` (the path and query as the client sent them) with its
method, body and content type; the replica's status, body and content type come back as
they are, whatever the status.

Along the way the gateway feeds each revision's metric window, which the controller's
autoscaler reads: the revision's concurrency (requests in flight on its replicas plus
those held) sampled as each request starts and ends, or one arrival per request.

1. **No ready replica** (scale from zero, or every replica failed): the request is held,
   not refused. It counts in the revision's ``held``, wakes the controller, and waits
   for the state to change until a replica is ready or the service's timeout passes
   (503).
2. **A replica that cannot be reached** (refused, or the connection lost before a whole
   answer) is marked not ready, the controller is woken to probe it again, and the
   request is sent once more, to another ready replica or held as in 1. A second
   failure is a 502; no answer within the service's timeout is a 504.

**Two doors, one gateway.** The platform's front (:mod:`cnai.core.server.front`) hands
``/serving/`` requests straight to :meth:`Gateway.lane`, past uvicorn's ASGI cycle and
the API server's middleware and router; :meth:`Gateway.handle` is the same gateway as a
Starlette route, for a request on a connection the front already gave to uvicorn (one
that began with a resource API call). Both end in :meth:`Gateway.serve`. The replicas
are reached by :class:`~cnai.serving.upstream.Upstreams` (why not httpx: there).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Histogram
from pydantic_core import to_json
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.routing import Route as HttpRoute

from cnai.core import tracing
from cnai.core.auth import Principal, authorize
from cnai.core.metrics import metrics_registry
from cnai.core.server.extensions import RouteContext
from cnai.core.server.front import Lane, LaneRequest, LaneResponse
from cnai.serving.autoscaler import Metric
from cnai.serving.metrics import DURATION_BUCKETS
from cnai.serving.revisions import Picker
from cnai.serving.state import SERVING_STATE, Replica, RevisionRoute, Route, ServingState
from cnai.serving.traffic import traffic_route
from cnai.serving.upstream import Answer, Unreachable, Upstreams

_TRACER = tracing.tracer("cnai.serving.gateway")
PREFIX = "/serving/"
PATH = PREFIX + "{ns}/{name}/{path:path}"
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE"]
JSON = b"application/json"
# What a replica takes (cnai.serving.server.DEFAULT_MAX_BODY_BYTES), the gateway takes.
MAX_BODY_BYTES = 16 * 1024 * 1024
# Bytes that cannot stand in a request line (the client's server refuses them already).
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")

# Inference latencies through the gateway: the model server's buckets, then up to 60 s
# (a held request waits for a replica to start).
GATEWAY_BUCKETS = (*DURATION_BUCKETS, 10.0, 60.0)

# ``Authorization`` header (or None) -> the caller; raises Unauthorized.
Authenticate = Callable[[str | None], Principal]


def _error(status: int, message: str) -> Answer:
    return Answer(status, JSON, to_json({"error": message}), None)


class Gateway:
    """The gateway over ``state``, its callers authenticated by ``authenticate``."""

    def __init__(
        self,
        state: ServingState,
        authenticate: Authenticate,
        upstreams: Upstreams,
        picker: Picker | None = None,
        clock: Callable[[], float] = time.monotonic,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self.state = state
        self.metrics = metrics
        self.authenticate = authenticate
        self.upstreams = upstreams
        self.picker = picker or Picker()
        self.clock = clock

    def routes(self) -> list[BaseRoute]:
        """The gateway as a Starlette route (:meth:`handle`)."""
        return [HttpRoute(PATH, self.handle, methods=METHODS)]

    def lane(self) -> Lane:
        """The gateway as the front's lane (:meth:`answer`)."""
        return Lane(PREFIX.encode(), self.answer, MAX_BODY_BYTES)

    def route(self, ns: str, name: str, authorization: str | None) -> Route | Answer:
        """The route of ``ns/name`` if the caller may ``get`` the service (else
        Unauthorized or Forbidden); a 404 answer if it is not served."""
        authorize(
            self.authenticate(authorization),
            namespace=ns,
            namespaced=True,
            plural="inferenceservices",
            verb="get",
        )
        route = self.state.routes.get((ns, name))
        if route is None:
            return _error(
                404, f"inferenceservice {ns}/{name} is not served (not found, or no revision yet)"
            )
        return route

    async def answer(self, request: LaneRequest) -> LaneResponse:
        """The front's door: ``/serving/NAMESPACE/NAME/PATH?QUERY``, whole (in a server
        span of its own where tracing is on: the front is past the ASGI middleware)."""
        if not tracing.enabled():
            return await self._answer(request)
        method = request.method.decode("latin-1")
        with _TRACER.start_as_current_span(
            f"{method} {PATH}",
            context=tracing.context_from(request.headers),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": method, "http.route": PATH},
        ) as span:
            response = await self._answer(request)
            span.set_attribute("http.response.status_code", response.status)
            if response.status >= 500:
                span.set_status(trace.StatusCode.ERROR)
            return response

    async def _answer(self, request: LaneRequest) -> LaneResponse:
        parts = request.target.split(b"/", 4)
        if len(parts) < 5:
            return _lane_response(
                _error(404, f"not found: serving paths are {PREFIX}NAMESPACE/NAME/PATH"),
                request.method,
            )
        authorization = request.header(b"authorization")
        found = self.route(
            _segment(parts[2]),
            _segment(parts[3]),
            None if authorization is None else authorization.decode("latin-1"),
        )
        if isinstance(found, Answer):
            return _lane_response(found, request.method)
        target = b"/" + parts[4]
        if _BAD_TARGET.search(target):
            answer = _error(400, "the request's path or query holds a space or control byte")
        else:
            content_type = request.header(b"content-type")
            answer = await self.forward(found, request.method, target, request.body, content_type)
        return _lane_response(answer, request.method)

    async def handle(self, request: Request) -> Response:
        """The Starlette route's door."""
        params = request.path_params
        method = request.method.encode()
        found = self.route(params["ns"], params["name"], request.headers.get("authorization"))
        if isinstance(found, Answer):
            return _response(found, method)
        target = _target(request)
        if _BAD_TARGET.search(target):
            return _response(
                _error(400, "the request's path or query holds a space or control byte"), method
            )
        try:
            body = await request.body()
        except ClientDisconnect:
            return Response(status_code=499)  # nobody reads it
        content_type = None
        for key, value in request.scope["headers"]:
            if key == b"content-type":
                content_type = value
        return _response(await self.forward(found, method, target, body, content_type), method)

    async def forward(
        self, route: Route, method: bytes, target: bytes, body: bytes, content_type: bytes | None
    ) -> Answer:
        """Send the request to a ready replica of ``route`` (counted and timed in the
        route's :class:`~cnai.serving.traffic.Traffic` and the gateway's metrics, if it
        has them)."""
        if tracing.enabled():
            service = f"{route.namespace}/{route.name}"
            trace.get_current_span().set_attribute("cnai.inferenceservice", service)
        started = time.perf_counter()
        answer = await self._forward(route, method, target, body, content_type)
        seconds = time.perf_counter() - started
        route.traffic.add(answer.status, seconds)
        if self.metrics is not None:
            self.metrics.answered(route.namespace, route.name, answer.status, seconds)
        return answer

    async def _forward(
        self, route: Route, method: bytes, target: bytes, body: bytes, content_type: bytes | None
    ) -> Answer:
        """Send the request to a ready replica of ``route``: once, and once more if that
        replica cannot be reached."""
        now = self.clock()
        deadline = now + route.timeout_s
        revision = self._draw(route)
        if revision is not None and revision.window.metric is Metric.RPS:
            revision.window.add_requests(now)
        woken = False
        failure = ""
        for _ in range(2):
            replica = _pick(self.picker, revision)
            if replica is None or revision is None:
                held = await self._hold(route, revision, deadline, woken)
                if isinstance(held, Answer):
                    return held
                revision, replica = held
                woken = True
            try:
                answer = await self._send(
                    revision, replica, method, target, body, content_type, deadline
                )
            except Unreachable as exc:
                failure = f"{replica.name}: {exc}"
                replica.ready = False
                if not woken:
                    self.state.wake(route.namespace, route.name)
                    woken = True
                continue
            except TimeoutError:
                return _error(504, f"replica {replica.name} did not answer in time")
            return answer
        return _error(502, f"no replica of {route.namespace}/{route.name} answered: {failure}")

    def _draw(self, route: Route) -> RevisionRoute | None:
        """The revision drawn by share; if that one is gone, the one with the largest
        share (the latest if none has a share); None if there is no revision."""
        drawn = self.picker.revision(route.shares)
        found = route.revisions.get(drawn) if drawn is not None else None
        if found is None and route.revisions:
            return max(
                reversed(route.revisions.values()), key=lambda r: route.shares.get(r.name, 0)
            )
        return found

    async def _hold(
        self, route: Route, revision: RevisionRoute | None, deadline: float, woken: bool
    ) -> tuple[RevisionRoute, Replica] | Answer:
        """Wait until a replica of the route's drawn revision is ready; the 503 (or the
        404 of a service deleted meanwhile) if none is by ``deadline``."""
        ns, name = route.namespace, route.name
        _held(revision, 1, self.clock())
        if not woken:
            self.state.wake(ns, name)
        served = False
        try:
            while True:
                remaining = deadline - self.clock()
                if remaining <= 0:
                    return _error(
                        503, f"no replica of {ns}/{name} became ready within {route.timeout_s:g} s"
                    )
                await self.state.wait_for_change(remaining)
                found = self.state.routes.get((ns, name))
                if found is None:
                    return _error(404, f"inferenceservice {ns}/{name} is no longer served")
                drawn = self._draw(found)
                if drawn is not revision:  # a new draw, or the controller replaced it
                    now = self.clock()
                    _held(revision, -1, now)
                    _held(drawn, 1, now)
                    revision = drawn
                replica = _pick(self.picker, revision)
                if replica is not None and revision is not None:
                    served = True
                    return revision, replica
        finally:
            # A request that goes on is sampled as it starts (_send), with no dip in the
            # revision's concurrency between held and in flight.
            _held(revision, -1, self.clock(), record=not served)

    async def _send(
        self,
        revision: RevisionRoute,
        replica: Replica,
        method: bytes,
        target: bytes,
        body: bytes,
        content_type: bytes | None,
        deadline: float,
    ) -> Answer:
        """The replica's answer, counted in flight on it while it is awaited."""
        headers: list[tuple[bytes, bytes]] = []
        if tracing.enabled():  # the model server's span continues this trace
            span = trace.get_current_span()
            span.set_attribute("cnai.revision", revision.name)
            span.set_attribute("cnai.replica", replica.name)
            headers = tracing.headers_of_current()
        window = revision.window
        concurrency = window.metric is Metric.CONCURRENCY
        replica.in_flight += 1
        if concurrency:
            window.record(self.clock(), revision.in_flight())
        try:
            timeout = max(deadline - self.clock(), 0.001)
            return await self.upstreams.request(
                replica.url, method, target, body, content_type, timeout, headers
            )
        finally:
            replica.in_flight -= 1
            if concurrency:
                window.record(self.clock(), revision.in_flight())


def _response(answer: Answer, method: bytes) -> Response:
    response = Response(answer.body, status_code=answer.status)
    if answer.content_type is not None:
        response.raw_headers.append((b"content-type", answer.content_type))
    if method == b"HEAD" and answer.length is not None:  # what a GET would carry
        response.raw_headers = [(k, v) for k, v in response.raw_headers if k != b"content-length"]
        response.raw_headers.append((b"content-length", answer.length))
    return response


def _pick(picker: Picker, revision: RevisionRoute | None) -> Replica | None:
    if revision is None:
        return None
    name = picker.replica(revision.ready())
    return None if name is None else revision.replicas[name]


def _held(revision: RevisionRoute | None, change: int, now: float, record: bool = True) -> None:
    """Count a request held on ``revision`` (or no longer held), sampling its concurrency."""
    if revision is None:
        return
    revision.held += change
    if record and revision.window.metric is Metric.CONCURRENCY:
        revision.window.record(now, revision.in_flight())


def _target(request: Request) -> bytes:
    """``/PATH?QUERY`` as the client sent them (escapes kept as they were)."""
    scope = request.scope
    raw: bytes | None = scope.get("raw_path")
    parts = raw.split(b"/", 4) if raw else []
    if len(parts) == 5:
        path = b"/" + parts[4]
    else:  # a server that gives no raw path: the decoded one, escaped again
        path = b"/" + quote(request.path_params["path"], safe="/:@!$&'()*+,;=-._~").encode()
    query: bytes = scope.get("query_string", b"")
    return path + b"?" + query if query else path


class GatewayMetrics:
    """The gateway's Prometheus metrics, per InferenceService (only those it serves, so
    clients cannot grow the set of series):

    - ``cnai_gateway_requests_total{namespace,inferenceservice,code}``: requests
      answered, whatever answered them (a replica, or the gateway's 502/503/504);
    - ``cnai_gateway_request_duration_seconds{namespace,inferenceservice}``: from the
      gateway taking the request to its answer, held time included.

    The series of a service are bound once and kept, as the request path would
    otherwise pay ``labels()`` (a hash and a lock) twice a request.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "cnai_gateway_requests_total",
            "Inference requests the gateway answered, by service and status code.",
            ["namespace", "inferenceservice", "code"],
            registry=registry,
        )
        self.seconds = Histogram(
            "cnai_gateway_request_duration_seconds",
            "Time from the gateway taking an inference request to its answer.",
            ["namespace", "inferenceservice"],
            buckets=GATEWAY_BUCKETS,
            registry=registry,
        )
        self._bound: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def answered(self, ns: str, name: str, status: int, seconds: float) -> None:
        """Count one answer of ``ns/name`` with ``status``, ``seconds`` after its start."""
        bound = self._bound.get((ns, name, status))
        if bound is None:
            bound = self._bound[(ns, name, status)] = (
                self.requests.labels(ns, name, str(status)),
                self.seconds.labels(ns, name),
            )
        bound[0].inc()
        bound[1].observe(seconds)


def _segment(raw: bytes) -> str:
    """A namespace or name from the target, its escapes undone (as Starlette does)."""
    text = raw.decode("utf-8", "replace")
    return unquote(text) if "%" in text else text


def _lane_response(answer: Answer, method: bytes) -> LaneResponse:
    headers = [] if answer.content_type is None else [(b"content-type", answer.content_type)]
    if method == b"HEAD" and answer.length is not None:  # what a GET would carry
        headers.append((b"content-length", answer.length))
    return LaneResponse(answer.status, answer.body, headers)


def route_factory(ctx: RouteContext) -> list[BaseRoute]:
    """The gateway over the serving state shared with the InferenceService controller
    (made here if the controller's capability has not made it yet): the front's lane
    and the Starlette route; and each service's recent traffic (:mod:`cnai.serving.traffic`)."""
    state = ctx.services.get(SERVING_STATE)
    if state is None:
        state = ctx.services[SERVING_STATE] = ServingState()
    upstreams = Upstreams()
    ctx.on_close(upstreams.aclose)
    metrics = GatewayMetrics(metrics_registry(ctx.services))
    gateway = Gateway(state, ctx.api.authenticate, upstreams, metrics=metrics)
    ctx.add_lane(gateway.lane())
    ctx.api.body_limits.append((re.compile("^" + re.escape(PREFIX)), MAX_BODY_BYTES))
    return [*gateway.routes(), traffic_route(ctx.api, state)]
