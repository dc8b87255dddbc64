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

**Why not httpx.** The request path is the product, and the gateway adds a hop to it.
The replicas are reached by :class:`Upstreams`, a keep-alive HTTP/1.1 client on asyncio
protocols and httptools (the parser uvicorn already uses) rather than httpx. Measured
proxying a one-line JSON answer on loopback, sequential requests, on uvloop (2-core
machine with other load, so read the ratios): the gateway process spent 250 us of CPU
per request with this client, of which 145 us is uvicorn and Starlette receiving the
request and answering it (the same app answering by itself), against 800-1,050 us
through ``httpx.AsyncHTTPTransport`` (1,200-1,850 us as installed: httpcore retries a
failing ``import sniffio`` on each lock, 4 per request, since anyio 4.16 dropped
sniffio) and 415-515 us through aiohttp; the hop added about 300 us to the p50.
Most of what is left is socket writes. httpx's client would also keep one cookie jar
for every caller, and log each request at INFO.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote, urlsplit

import httptools
from pydantic_core import to_json
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.routing import Route as HttpRoute

from cnai.core.auth import authorize
from cnai.core.server.extensions import RouteContext
from cnai.serving.autoscaler import Metric
from cnai.serving.revisions import Picker
from cnai.serving.state import SERVING_STATE, Replica, RevisionRoute, Route, ServingState

PATH = "/serving/{ns}/{name}/{path:path}"
METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE"]
JSON = "application/json"
# An idle connection is dropped after 4 s, before uvicorn (the model server) closes it
# at 5 s, so that a request is rarely sent on a connection the replica is closing.
KEEPALIVE_S = 4.0
MAX_IDLE = 256  # idle connections kept per replica
# Bytes that cannot stand in a request line (the client's server refuses them already).
_BAD_TARGET = re.compile(rb"[\x00-\x20\x7f]")


# -- The client to the replicas ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """A replica's whole answer."""

    status: int
    content_type: bytes | None
    body: bytes
    length: bytes | None  # its Content-Length (what a HEAD answer announces)


class Unreachable(Exception):
    """No whole answer came: the connection was refused, lost, or spoke bad HTTP."""


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection to a replica, carrying one request at a time."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self.waiter: asyncio.Future[Answer] | None = None
        self.head = False
        self.keep_alive = False  # the answer leaves the connection open for the next
        self.received = False  # any byte of the current answer
        self.headers_done = False
        self.framed = False  # a length or chunks say where the body ends (else: at EOF)
        self.content_type: bytes | None = None
        self.length: bytes | None = None
        self.chunks: list[bytes] = []

    def start(self, waiter: asyncio.Future[Answer], head: bool, request: list[bytes]) -> None:
        self.waiter, self.head = waiter, head
        self.received = self.headers_done = self.framed = self.keep_alive = False
        self.content_type = self.length = None
        self.chunks = []
        assert self.transport is not None
        self.transport.writelines(request)

    @property
    def reusable(self) -> bool:
        return self.keep_alive and not self.closed and not self.head

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            self._fail(Unreachable(f"bad HTTP answer: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.headers_done and not self.framed and exc is None:
            self._done()  # a body that ends with the connection
        else:
            self._fail(Unreachable(f"connection lost: {exc!r}" if exc else "connection closed"))

    # httptools callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"content-type":
            self.content_type = value
        elif name == b"content-length":
            self.length, self.framed = value, True
        elif name == b"transfer-encoding":
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.head or self.parser.get_status_code() in (204, 304):
            self.framed = True
            if self.head:  # the parser would wait for the announced body
                self._done()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # 1xx: the answer follows
            self.headers_done = self.framed = False
            self.content_type = self.length = None
            return
        # Asked now: the parser forgets the answer's framing once this returns.
        self.keep_alive = self.parser.should_keep_alive()
        self._done()

    def _done(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            body = b"".join(self.chunks)
            status = self.parser.get_status_code()
            waiter.set_result(Answer(status, self.content_type, body, self.length))

    def _fail(self, exc: Exception) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


class Upstreams:
    """Keep-alive connections to the replicas, by URL (``http://HOST:PORT``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._idle: dict[str, list[_Connection]] = {}
        self._hosts: dict[str, tuple[str, int, bytes]] = {}
        self._closed = False

    async def request(
        self,
        url: str,
        method: bytes,
        target: bytes,
        body: bytes,
        content_type: bytes | None,
        timeout: float,
    ) -> Answer:
        """Send the request and read the whole answer. Raises :class:`Unreachable` if
        none came, TimeoutError if none came within ``timeout`` seconds."""
        host, port, authority = self._host(url)
        head = [method, b" ", target, b" HTTP/1.1\r\nhost: ", authority]
        head.append(b"\r\ncontent-length: %d\r\n" % len(body))
        if content_type is not None:
            head += (b"content-type: ", content_type, b"\r\n")
        head.append(b"\r\n")
        request = [b"".join(head), body]
        async with asyncio.timeout(timeout):
            conn = self._take(url)
            if conn is not None:
                try:
                    return await self._exchange(url, conn, method == b"HEAD", request)
                except Unreachable:
                    if conn.received:
                        raise
                    # Most likely the replica closed it while it sat idle, before reading
                    # this request: once more on a new connection.
            conn = await self._connect(host, port)
            return await self._exchange(url, conn, method == b"HEAD", request)

    async def aclose(self) -> None:
        """Close the idle connections (those in use close as their requests end)."""
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()

    def _host(self, url: str) -> tuple[str, int, bytes]:
        found = self._hosts.get(url)
        if found is None:
            try:
                parts = urlsplit(url)
                port = parts.port or 80
            except ValueError as exc:
                raise Unreachable(f"bad replica URL {url!r}: {exc}") from None
            if parts.scheme != "http" or not parts.hostname:
                raise Unreachable(f"bad replica URL {url!r}: only http://HOST:PORT")
            found = self._hosts[url] = (parts.hostname, port, parts.netloc.encode())
        return found

    def _take(self, url: str) -> _Connection | None:
        """The most recently used idle connection to ``url`` that is still fresh."""
        idle = self._idle.get(url)
        now = self.clock()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < KEEPALIVE_S:
                return conn
            conn.close()
        return None

    async def _connect(self, host: str, port: int) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(_Connection, host, port)
        except OSError as exc:
            raise Unreachable(f"cannot connect: {exc}") from None
        return conn

    async def _exchange(
        self, url: str, conn: _Connection, head: bool, request: list[bytes]
    ) -> Answer:
        waiter: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        conn.start(waiter, head, request)
        try:
            answer = await waiter
        except BaseException:
            conn.close()  # in whatever state it was left: never reused
            raise
        if conn.reusable and not self._closed:
            conn.idle_since = self.clock()
            idle = self._idle.setdefault(url, [])
            if len(idle) >= MAX_IDLE:
                idle.pop(0).close()
            idle.append(conn)
        else:
            conn.close()
        return answer


# -- The gateway ------------------------------------------------------------------------


def _error(status: int, message: str) -> Response:
    return Response(to_json({"error": message}), status_code=status, media_type=JSON)


class Gateway:
    """The gateway's endpoint over ``state``, authenticated by ``api``."""

    def __init__(
        self,
        state: ServingState,
        api: Any,
        upstreams: Upstreams,
        picker: Picker | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.state = state
        self.api = api
        self.upstreams = upstreams
        self.picker = picker or Picker()
        self.clock = clock

    async def handle(self, request: Request) -> Response:
        """The endpoint: authorize, find the service's route, forward."""
        params = request.path_params
        ns: str = params["ns"]
        name: str = params["name"]
        authorize(
            self.api.principal(request),
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
        target = _target(request)
        if _BAD_TARGET.search(target):
            return _error(400, "the request's path or query holds a space or control byte")
        try:
            body = await request.body()
        except ClientDisconnect:
            return Response(status_code=499)  # nobody reads it
        content_type = None
        for key, value in request.scope["headers"]:
            if key == b"content-type":
                content_type = value
        return await self._forward(route, request.method.encode(), target, body, content_type)

    async def _forward(
        self, route: Route, method: bytes, target: bytes, body: bytes, content_type: bytes | None
    ) -> Response:
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
                if isinstance(held, Response):
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
            return _response(answer, method)
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
    ) -> tuple[RevisionRoute, Replica] | Response:
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
        window = revision.window
        concurrency = window.metric is Metric.CONCURRENCY
        replica.in_flight += 1
        if concurrency:
            window.record(self.clock(), revision.in_flight())
        try:
            timeout = max(deadline - self.clock(), 0.001)
            return await self.upstreams.request(
                replica.url, method, target, body, content_type, timeout
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


def gateway_routes(
    state: ServingState,
    api: Any,
    *,
    upstreams: Upstreams | None = None,
    picker: Picker | None = None,
) -> list[BaseRoute]:
    """The gateway's route over ``state``, authenticated by ``api`` (the resource API
    server), reaching the replicas through ``upstreams`` (a new one if None: close it
    with its ``aclose``)."""
    gateway = Gateway(state, api, upstreams or Upstreams(), picker)
    return [HttpRoute(PATH, gateway.handle, methods=METHODS)]


def route_factory(ctx: RouteContext) -> list[BaseRoute]:
    """The gateway over the serving state shared with the InferenceService controller
    (made here if the controller's capability has not made it yet)."""
    state = ctx.services.get(SERVING_STATE)
    if state is None:
        state = ctx.services[SERVING_STATE] = ServingState()
    upstreams = Upstreams()
    ctx.on_close(upstreams.aclose)
    return gateway_routes(state, ctx.api, upstreams=upstreams)
