"""The serving gateway over real HTTP: the gateway and two upstream "replicas" (tiny
ASGI apps answering with their own name) each on uvicorn on a loopback port, in threads.
The test publishes routes into the gateway's ServingState as the InferenceService
controller would, on the gateway's event loop.

Every test runs through both of the gateway's doors: the front's lane (uvicorn running
:mod:`cnai.core.server.front`, as the platform does) and the Starlette route (what a
connection the front handed to uvicorn reaches)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
import uvloop
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from cnai.core.auth import Principal
from cnai.core.errors import ApiError, Unauthorized
from cnai.core.server.extensions import RouteContext
from cnai.core.server.front import LaneRequest, LaneResponse, front_protocol
from cnai.serving import server, traffic
from cnai.serving.autoscaler import Metric, MetricWindow
from cnai.serving.gateway import MAX_BODY_BYTES, PATH, GatewayMetrics, route_factory
from cnai.serving.gateway import Gateway as Gw
from cnai.serving.revisions import Picker
from cnai.serving.state import SERVING_STATE, Replica, RevisionRoute, Route, ServingState
from cnai.serving.upstream import Upstreams

from .conftest import free_port

T = TypeVar("T")
ADMIN = {"authorization": "Bearer admin"}


class Upstream:
    """A replica: answers JSON naming itself and echoing what it got; ``/bad`` is a 400,
    ``/text`` plain text, ``/slow`` waits until :meth:`release` (or 5 s)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0
        self._go = threading.Event()

    def release(self) -> None:
        self._go.set()

    def reset(self) -> None:
        self.count = 0
        self._go = threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.count += 1
        path: str = scope["path"]
        go = self._go
        if path.endswith("/slow"):
            for _ in range(500):
                if go.is_set():
                    break
                await asyncio.sleep(0.01)
        headers = dict(scope["headers"])
        echo = {
            "replica": self.name,
            "method": scope["method"],
            "path": scope["raw_path"].decode(),
            "query": scope["query_string"].decode(),
            "body": body.decode(),
            "contentType": headers.get(b"content-type", b"").decode(),
            "authorization": headers.get(b"authorization", b"").decode(),
        }
        status, kind = 200, b"application/json"
        if path.endswith("/bad"):
            status = 400
        if path.endswith("/text"):
            kind = b"text/plain"
        out = json.dumps(echo).encode()
        start = [(b"content-type", kind), (b"content-length", str(len(out)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": start})
        await send({"type": "http.response.body", "body": out})


def authenticate(authorization: str | None) -> Principal:
    """``Bearer admin`` is the admin and ``Bearer ns:NAME`` a token of namespace NAME;
    the real ``authorize`` decides the rest."""
    token = (authorization or "").removeprefix("Bearer ")
    if token == "admin":
        return Principal("admin", None)
    if token.startswith("ns:"):
        return Principal("t1", token[3:])
    raise Unauthorized("invalid bearer token")


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.to_status(), status_code=exc.code)


@dataclass
class Served:
    """An ASGI app on uvicorn in a thread, with its event loop."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's event loop (where the gateway's state lives)."""
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        self.loop.call_soon_threadsafe(run)
        return done.result(timeout=5)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def serve(app: Any, http: Any = "httptools") -> Served:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        access_log=False,
        log_level="warning",
        http=http,
    )
    server = uvicorn.Server(config)
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve()

    # On uvloop, as the platform serves.
    thread = threading.Thread(target=uvloop.run, args=(main(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.005)
    return Served(f"http://127.0.0.1:{port}", server, thread, loops[0])


class SpyWindow(MetricWindow):
    """A metric window that also keeps what the gateway fed it."""

    def __init__(self, metric: Metric) -> None:
        super().__init__(metric)
        self.samples: list[float] = []
        self.arrivals = 0

    def record(self, now: float, value: float) -> None:
        self.samples.append(value)
        super().record(now, value)

    def add_requests(self, now: float, n: int = 1) -> None:
        self.arrivals += n
        super().add_requests(now, n)


class RouteBuilder:
    """``a_service().revision("r1", 90).replica(up_a).revision("r2", 10)...``"""

    def __init__(self, namespace: str, name: str) -> None:
        self.route = Route(namespace, name)
        self._last: RevisionRoute | None = None

    def revision(
        self, name: str, share: int = 100, metric: Metric = Metric.CONCURRENCY
    ) -> RouteBuilder:
        self.route.shares[name] = share
        self._last = self.route.revisions[name] = RevisionRoute(
            name, self.route.name, SpyWindow(metric)
        )
        return self

    def replica(self, name: str, url: str, ready: bool = True) -> RouteBuilder:
        assert self._last is not None
        self._last.replicas[name] = Replica(name, url, ready)
        return self

    def timeout(self, seconds: float) -> RouteBuilder:
        self.route.timeout_s = seconds
        return self


def spy(route: Route, revision: str) -> SpyWindow:
    window = route.revisions[revision].window
    assert isinstance(window, SpyWindow)
    return window


def a_service(namespace: str = "team", name: str = "iris") -> RouteBuilder:
    return RouteBuilder(namespace, name)


@dataclass
class Gateway:
    """The running gateway, its state, the upstreams, and a client of the gateway."""

    served: Served
    state: ServingState
    up: dict[str, Upstream]
    upstream_urls: dict[str, str]
    http: httpx.Client
    door: str  # "lane" or "route"
    doors: dict[str, int]  # requests each door took
    metrics: CollectorRegistry
    woken: list[tuple[str, str]] = field(default_factory=list)

    def publish(self, builder: RouteBuilder) -> Route:
        route = builder.route

        def put() -> None:
            self.state.routes[(route.namespace, route.name)] = route
            self.state.changed()

        self.served.call(put)
        return route

    def url(self, name: str) -> str:
        return self.upstream_urls[name]

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, headers=kw.pop("headers", ADMIN), **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, headers=kw.pop("headers", ADMIN), **kw)

    def in_background(self, path: str) -> concurrent.futures.Future[httpx.Response]:
        pool = concurrent.futures.ThreadPoolExecutor(1)
        future = pool.submit(self.get, path)
        pool.shutdown(wait=False)
        return future


def wait_until(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5
    while not check():
        assert time.monotonic() < deadline, "condition not met within 5 s"
        time.sleep(0.005)


class CountingGateway(Gw):
    """The gateway, counting the requests each door took."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.doors = {"lane": 0, "route": 0}

    async def answer(self, request: LaneRequest) -> LaneResponse:
        self.doors["lane"] += 1
        return await super().answer(request)

    async def handle(self, request: Request) -> Response:
        self.doors["route"] += 1
        return await super().handle(request)


@pytest.fixture(scope="module", params=["lane", "route"])
def running(request: pytest.FixtureRequest) -> Iterator[Gateway]:
    ups = {name: Upstream(name) for name in ("a", "b")}
    served_ups = {name: serve(app) for name, app in ups.items()}
    state = ServingState()
    upstreams = Upstreams()
    metrics = CollectorRegistry()
    gateway = CountingGateway(
        state, authenticate, upstreams, Picker(random.Random(7)), metrics=GatewayMetrics(metrics)
    )
    app = Starlette(routes=gateway.routes(), exception_handlers={ApiError: _api_error})
    http = front_protocol([gateway.lane()]) if request.param == "lane" else "httptools"
    served = serve(app, http)
    urls = {name: s.url for name, s in served_ups.items()}
    with httpx.Client(base_url=served.url, timeout=10) as http:
        yield Gateway(served, state, ups, urls, http, request.param, gateway.doors, metrics)
    asyncio.run_coroutine_threadsafe(upstreams.aclose(), served.loop).result(timeout=5)
    served.stop()
    for s in served_ups.values():
        s.stop()


@pytest.fixture
def gw(running: Gateway) -> Iterator[Gateway]:
    """The gateway with no routes, fresh upstreams, and ``wake`` recorded."""
    running.woken = []

    def reset() -> None:
        running.state.routes.clear()
        running.state.wake = lambda ns, name: running.woken.append((ns, name))

    running.served.call(reset)
    for up in running.up.values():
        up.reset()
    yield running
    for up in running.up.values():
        up.release()


def test_unknown_service_is_404(gw: Gateway) -> None:
    answer = gw.get("/serving/team/nope/v2/health/ready")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": "inferenceservice team/nope is not served (not found, or no revision yet)"
    }


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        pytest.param({}, 401, id="no-token-is-401"),
        pytest.param({"authorization": "Bearer ns:other"}, 403, id="other-namespace-is-403"),
        pytest.param({"authorization": "Bearer ns:team"}, 200, id="own-namespace-token-works"),
    ],
)
def test_callers_need_access_to_the_namespace(
    gw: Gateway, headers: dict[str, str], status: int
) -> None:
    gw.publish(a_service().revision("iris-00001").replica("a-1", gw.url("a")))
    answer = gw.get("/serving/team/iris/v2/health/ready", headers=headers)
    assert answer.status_code == status
    assert gw.up["a"].count == (1 if status == 200 else 0)


def test_request_and_answer_pass_through(gw: Gateway) -> None:
    gw.publish(a_service().revision("iris-00001").replica("a-1", gw.url("a")))
    doors = dict(gw.doors)
    answer = gw.post(
        "/serving/team/iris/v2/models/iris%2Fx/infer?id=7&x=a%20b",
        content=b'{"inputs": []}',
        headers={**ADMIN, "content-type": "application/json; charset=utf-8"},
    )
    assert (answer.status_code, answer.headers["content-type"]) == (200, "application/json")
    assert answer.json() == {
        "replica": "a",
        "method": "POST",
        "path": "/v2/models/iris%2Fx/infer",
        "query": "id=7&x=a%20b",
        "body": '{"inputs": []}',
        "contentType": "application/json; charset=utf-8",
        "authorization": "",  # the caller's token stays with the gateway
    }
    other = "route" if gw.door == "lane" else "lane"
    assert (gw.doors[gw.door], gw.doors[other]) == (doors[gw.door] + 1, doors[other])


@pytest.mark.parametrize(
    ("path", "status", "content_type"),
    [
        pytest.param("v2/bad", 400, "application/json", id="replica-400-passes-as-is"),
        pytest.param("v2/text", 200, "text/plain", id="content-type-unchanged"),
    ],
)
def test_replica_status_and_type_pass_through(
    gw: Gateway, path: str, status: int, content_type: str
) -> None:
    gw.publish(a_service().revision("iris-00001").replica("a-1", gw.url("a")))
    answer = gw.get(f"/serving/team/iris/{path}")
    assert (answer.status_code, answer.headers["content-type"]) == (status, content_type)
    assert answer.json()["replica"] == "a"


def test_busy_replica_is_passed_over_for_an_idle_one(gw: Gateway) -> None:
    route = gw.publish(
        a_service().revision("iris-00001").replica("a-1", gw.url("a")).replica("b-1", gw.url("b"))
    )
    replicas = route.revisions["iris-00001"].replicas
    slow = gw.in_background("/serving/team/iris/slow")
    wait_until(lambda: any(r.in_flight == 1 for r in replicas.values()))
    busy = next(r for r in replicas.values() if r.in_flight == 1)
    idle = "b" if busy.name == "a-1" else "a"
    for _ in range(5):
        assert gw.get("/serving/team/iris/fast").json()["replica"] == idle
    gw.up[busy.name[0]].release()
    assert slow.result(timeout=5).json()["replica"] == busy.name[0]
    assert all(r.in_flight == 0 for r in replicas.values())


def test_traffic_is_split_by_share(gw: Gateway) -> None:
    gw.publish(
        a_service()
        .revision("iris-00002", 90)
        .replica("a-1", gw.url("a"))
        .revision("iris-00001", 10)
        .replica("b-1", gw.url("b"))
    )
    for _ in range(300):
        assert gw.get("/serving/team/iris/v2").status_code == 200
    # 30 expected of 300 at 10 %; the bounds are about 3.8 standard deviations out.
    assert gw.up["a"].count + gw.up["b"].count == 300
    assert 10 <= gw.up["b"].count <= 50


def test_held_request_is_served_once_a_replica_is_ready(gw: Gateway) -> None:
    route = gw.publish(a_service().revision("iris-00001").replica("a-1", gw.url("a"), ready=False))
    revision = route.revisions["iris-00001"]
    held = gw.in_background("/serving/team/iris/v2")
    wait_until(lambda: revision.held == 1)
    assert gw.woken == [("team", "iris")]
    time.sleep(0.05)  # still held while nothing changes

    def ready() -> None:
        revision.replicas["a-1"].ready = True
        gw.state.changed()

    gw.served.call(ready)
    answer = held.result(timeout=5)
    assert (answer.status_code, answer.json()["replica"]) == (200, "a")
    assert (revision.held, gw.woken) == (0, [("team", "iris")])
    assert spy(route, "iris-00001").samples == [1, 1, 0]  # held, in flight, done


def test_held_request_follows_traffic_to_another_revision(gw: Gateway) -> None:
    route = gw.publish(
        a_service()
        .revision("iris-00002", 100)
        .replica("a-1", gw.url("a"), ready=False)
        .revision("iris-00001", 0)
        .replica("b-1", gw.url("b"))
    )
    latest, previous = route.revisions["iris-00002"], route.revisions["iris-00001"]
    held = gw.in_background("/serving/team/iris/v2")
    wait_until(lambda: latest.held == 1)

    def roll_back() -> None:
        route.shares = {"iris-00001": 100}
        gw.state.changed()

    gw.served.call(roll_back)
    assert held.result(timeout=5).json()["replica"] == "b"
    assert (latest.held, previous.held) == (0, 0)
    assert spy(route, "iris-00002").samples == [1, 0]  # held, then no longer


def test_held_request_for_a_deleted_service_is_404(gw: Gateway) -> None:
    route = gw.publish(a_service().revision("iris-00001").replica("a-1", gw.url("a"), ready=False))
    held = gw.in_background("/serving/team/iris/v2")
    wait_until(lambda: route.revisions["iris-00001"].held == 1)
    gw.served.call(lambda: gw.state.remove("team", "iris"))
    answer = held.result(timeout=5)
    assert answer.status_code == 404
    assert answer.json() == {"error": "inferenceservice team/iris is no longer served"}
    assert route.revisions["iris-00001"].held == 0


def test_held_request_times_out_with_503(gw: Gateway) -> None:
    route = gw.publish(
        a_service()
        .revision("iris-00001", metric=Metric.RPS)
        .replica("a-1", gw.url("a"), ready=False)
        .timeout(0.2)
    )
    answer = gw.get("/serving/team/iris/v2")
    assert answer.status_code == 503
    assert answer.json() == {"error": "no replica of team/iris became ready within 0.2 s"}
    revision = route.revisions["iris-00001"]
    assert (revision.held, gw.woken, gw.up["a"].count) == (0, [("team", "iris")], 0)
    assert spy(route, "iris-00001").arrivals == 1


def test_requests_are_counted_per_service_and_status(gw: Gateway) -> None:
    def count(code: str, name: str = "iris") -> float:
        labels = {"namespace": "team", "inferenceservice": name, "code": code}
        return gw.metrics.get_sample_value("cnai_gateway_requests_total", labels) or 0.0

    def timed() -> float:
        labels = {"namespace": "team", "inferenceservice": "iris"}
        name = "cnai_gateway_request_duration_seconds_count"
        return gw.metrics.get_sample_value(name, labels) or 0.0

    before = count("200"), count("400"), timed()
    gw.publish(a_service().revision("iris-00001").replica("a-1", gw.url("a")))
    for _ in range(3):
        assert gw.get("/serving/team/iris/v2").status_code == 200
    assert gw.get("/serving/team/iris/v2/bad").status_code == 400
    assert gw.get("/serving/team/nope/v2").status_code == 404  # not served: no series
    assert (count("200"), count("400"), timed()) == (
        before[0] + 3,
        before[1] + 1,
        before[2] + 4,
    )
    assert count("404", "nope") == 0


def test_every_answer_is_counted_in_the_services_traffic(gw: Gateway) -> None:
    route = gw.publish(
        a_service()
        .revision("iris-00001")
        .replica("dead-1", f"http://127.0.0.1:{free_port()}")
        .replica("a-1", gw.url("a"))
    )
    for _ in range(3):
        assert gw.get("/serving/team/iris/v2").status_code == 200
    assert gw.get("/serving/team/iris/v2/bad").status_code == 400
    assert gw.get("/serving/team/iris/v2", headers={}).status_code == 401  # not answered
    gw.publish(a_service().revision("iris-00001").timeout(0.05))  # a new route: its own
    assert gw.get("/serving/team/iris/v2").status_code == 503
    first = gw.served.call(lambda: route.traffic.series(60))
    assert first["total"] == {"requests": 4, "errors": 0}  # the retried request counts once
    assert max(v for v in first["meanMs"] if v is not None) > 0
    second = gw.served.call(lambda: gw.state.routes[("team", "iris")].traffic.series(60))
    assert second["total"] == {"requests": 1, "errors": 1}


def test_slow_replica_times_out_with_504(gw: Gateway) -> None:
    route = gw.publish(a_service().revision("iris-00001").replica("a-1", gw.url("a")).timeout(0.2))
    answer = gw.get("/serving/team/iris/slow")
    assert answer.status_code == 504
    assert "did not answer in time" in answer.json()["error"]
    replica = route.revisions["iris-00001"].replicas["a-1"]
    assert (replica.ready, replica.in_flight) == (True, 0)


def test_dead_replica_is_marked_and_the_request_retried(gw: Gateway) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    route = gw.publish(
        a_service()
        .revision("iris-00001", metric=Metric.RPS)
        .replica("dead-1", dead)
        .replica("a-1", gw.url("a"))
    )
    for _ in range(4):
        answer = gw.get("/serving/team/iris/v2")
        assert (answer.status_code, answer.json()["replica"]) == (200, "a")
    revision = route.revisions["iris-00001"]
    assert not revision.replicas["dead-1"].ready
    assert gw.woken == [("team", "iris")]
    assert spy(route, "iris-00001").arrivals == 4  # the retried request counts once


def test_no_replica_answering_is_502(gw: Gateway) -> None:
    route = gw.publish(
        a_service()
        .revision("iris-00001")
        .replica("dead-1", f"http://127.0.0.1:{free_port()}")
        .replica("dead-2", f"http://127.0.0.1:{free_port()}")
    )
    answer = gw.get("/serving/team/iris/v2")
    assert answer.status_code == 502
    assert answer.json()["error"].startswith("no replica of team/iris answered: ")
    assert not any(r.ready for r in route.revisions["iris-00001"].replicas.values())


def test_windows_see_every_request(gw: Gateway) -> None:
    route = gw.publish(
        a_service()
        .revision("iris-00002", 50)
        .replica("a-1", gw.url("a"))
        .revision("iris-00001", 50, metric=Metric.RPS)
        .replica("b-1", gw.url("b"))
    )
    for _ in range(20):
        assert gw.get("/serving/team/iris/v2").status_code == 200
    concurrency, rps = spy(route, "iris-00002"), spy(route, "iris-00001")
    assert rps.arrivals == gw.up["b"].count
    assert concurrency.samples == [1, 0] * gw.up["a"].count
    assert rps.average(time.monotonic(), 60) > 0


def test_head_announces_the_length_a_get_would_carry(gw: Gateway) -> None:
    gw.publish(a_service().revision("iris-00001").replica("a-1", gw.url("a")))
    whole = gw.get("/serving/team/iris/v2")
    head = gw.http.head("/serving/team/iris/v2", headers=ADMIN)
    assert (head.status_code, head.content) == (200, b"")
    # What the replica announced for this HEAD (its echo says "HEAD" where a GET's says "GET").
    assert int(head.headers["content-length"]) == len(whole.content) + 1
    assert head.headers["content-type"] == "application/json"


def test_the_capability_gives_the_front_a_lane_and_the_route_the_same_limit(
    tmp_path: Path,
) -> None:
    api = SimpleNamespace(authenticate=authenticate, body_limits=[])
    ctx = RouteContext(api, tmp_path)
    routes = route_factory(ctx)
    assert [lane.prefix for lane in ctx.lanes] == [b"/serving/"]
    # What a replica takes, both doors take (the API's default limit is 3 MiB).
    assert ctx.lanes[0].max_body_bytes == MAX_BODY_BYTES == server.DEFAULT_MAX_BODY_BYTES
    ((pattern, limit),) = api.body_limits
    assert pattern.match("/serving/team/iris/v2/models/iris/infer")
    assert not pattern.match("/apis/cnai.io/v1alpha1/namespaces/team/inferenceservices")
    assert limit == MAX_BODY_BYTES
    assert [getattr(route, "path", None) for route in routes] == [PATH, traffic.PATH]
    assert isinstance(ctx.services[SERVING_STATE], ServingState)
