"""A service's recent traffic: the per-second ring the gateway fills, and the endpoint
that serves it behind the API's tokens (a real app over a real SQLite store)."""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cnai.core.auth import TokenAuthority
from cnai.core.kernel import register_kernel
from cnai.core.registry import KindInfo, Registry
from cnai.core.resources import ResourceService
from cnai.core.server.app import PREFIX, create_app
from cnai.core.store.sqlite import SQLiteStore
from cnai.serving.api import InferenceService
from cnai.serving.state import Route, ServingState
from cnai.serving.traffic import BUCKETS, WINDOW_S, Traffic, bucket, bucket_bounds, quantile


class Clock:
    """Wall-clock seconds that the test moves."""

    def __init__(self, now: float = 1_700_000_000.25) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- the ring ------------------------------------------------------------------------


def test_requests_errors_and_latency_are_counted_per_second() -> None:
    clock = Clock()
    traffic = Traffic(clock, window=10)
    for status, seconds in [(200, 0.010), (200, 0.030), (503, 0.020), (400, 0.002)]:
        traffic.add(status, seconds)
    clock.now += 2
    traffic.add(200, 0.004)

    out = traffic.series(4)
    assert (out["start"], out["end"], out["interval"]) == (1_699_999_999, 1_700_000_002, 1)
    assert out["requests"] == [0, 4, 0, 1]
    assert out["errors"] == [0, 1, 0, 0]  # a 4xx is the client's, not an error
    assert out["meanMs"] == [None, 15.5, None, 4.0]
    assert out["p50Ms"][0] is None
    assert out["p99Ms"][2] is None
    assert out["total"] == {"requests": 5, "errors": 1}


def test_the_ring_forgets_seconds_older_than_its_window_and_reuses_their_slots() -> None:
    clock = Clock()
    traffic = Traffic(clock, window=5)
    for _ in range(7):
        traffic.add(200, 0.001)
    clock.now += 5  # the same slot, five seconds on: cleared before it counts again
    traffic.add(500, 0.001)
    out = traffic.series()
    assert out["requests"] == [0, 0, 0, 0, 1]
    assert out["errors"] == [0, 0, 0, 0, 1]
    clock.now += 3
    assert traffic.series()["requests"] == [0, 1, 0, 0, 0]
    clock.now += 10
    assert traffic.series()["total"] == {"requests": 0, "errors": 0}


@pytest.mark.parametrize(
    ("asked", "points"),
    [
        pytest.param(None, 7, id="default-is-the-whole-window"),
        pytest.param(3, 3, id="fewer-seconds"),
        pytest.param(1000, 7, id="more-than-the-window-is-the-window"),
        pytest.param(0, 1, id="at-least-one-second"),
    ],
)
def test_an_answer_is_bounded_by_the_window(asked: int | None, points: int) -> None:
    traffic = Traffic(Clock(), window=7)
    traffic.add(200, 0.1)
    out = traffic.series(asked)
    for column in ("requests", "errors", "p50Ms", "p99Ms", "meanMs"):
        assert len(out[column]) == points
    assert out["end"] - out["start"] + 1 == points


@pytest.mark.parametrize(
    "seconds", [0.0, 0.00005, 0.0001, 0.00123, 0.5, 1.0, 59.9, 60.0, 3600.0, math.inf]
)
def test_every_latency_falls_in_the_bucket_that_holds_it(seconds: float) -> None:
    index = bucket(seconds)
    assert 0 <= index < BUCKETS
    low, high = bucket_bounds(index)
    assert low <= seconds < high or (math.isinf(high) and seconds >= low)


@pytest.mark.parametrize(
    ("mu", "sigma"),
    [
        pytest.param(math.log(0.002), 0.3, id="fast-and-tight"),
        pytest.param(math.log(0.05), 1.0, id="slow-and-spread"),
        pytest.param(math.log(0.0003), 2.0, id="sub-millisecond-with-a-long-tail"),
    ],
)
def test_percentiles_are_within_ten_percent_of_the_exact_ones(mu: float, sigma: float) -> None:
    rng = random.Random(42)
    latencies = sorted(rng.lognormvariate(mu, sigma) for _ in range(5000))
    histogram = [0] * BUCKETS
    for s in latencies:
        histogram[bucket(s)] += 1
    for q in (0.5, 0.99):
        exact = latencies[int(q * len(latencies)) - 1]
        assert quantile(histogram, len(latencies), q) == pytest.approx(exact, rel=0.1)


def test_a_route_starts_with_empty_traffic_of_its_own() -> None:
    first, second = Route("team", "a"), Route("team", "b")
    first.traffic.add(200, 0.01)
    assert second.traffic.series()["total"]["requests"] == 0
    assert len(first.traffic.series()["requests"]) == WINDOW_S


# -- the endpoint --------------------------------------------------------------------


@dataclass
class Served:
    client: httpx.AsyncClient
    state: ServingState
    admin: str
    team: str  # a token of namespace "team"
    other: str  # a token of namespace "other"

    async def get(self, path: str, token: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.get(PREFIX + path, headers=headers)


def isvc(name: str, ns: str) -> dict[str, Any]:
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"predictor": {"model": "/m/model.joblib", "format": "sklearn"}},
    }


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    from cnai.serving.traffic import traffic_route

    store = SQLiteStore(tmp_path / "state.db")
    registry = Registry()
    register_kernel(registry)
    registry.register(KindInfo(InferenceService))
    service = ResourceService(registry, store)
    for ns in ("team", "other"):
        body = {"apiVersion": "cnai.io/v1alpha1", "kind": "Namespace", "metadata": {"name": ns}}
        await service.create("namespaces", body)
    await service.create("inferenceservices", isvc("iris", "team"), "team")
    await service.create("inferenceservices", isvc("fresh", "team"), "team")
    tokens = TokenAuthority(store)
    admin, _ = await tokens.issue(None, "admin")
    team, _ = await tokens.issue("team", "team")
    other, _ = await tokens.issue("other", "other")
    state = ServingState()
    app, _ = create_app(service, tokens, extra_routes=lambda api: [traffic_route(api, state)])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cnai.test") as client:
        yield Served(client, state, admin, team, other)
    await store.close()


TRAFFIC = "/namespaces/team/inferenceservices/iris/traffic"


@pytest.mark.anyio
async def test_the_endpoint_answers_the_routes_traffic(served: Served) -> None:
    route = served.state.routes[("team", "iris")] = Route("team", "iris")
    for status in (200, 200, 502):
        route.traffic.add(status, 0.004)
    answer = await served.get(TRAFFIC, served.admin)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["namespace"], body["name"], body["interval"]) == ("team", "iris", 1)
    assert len(body["requests"]) == WINDOW_S
    assert body["total"] == {"requests": 3, "errors": 1}
    assert body["requests"][-1] + body["requests"][-2] == 3  # now, or a second ago
    short = (await served.get(TRAFFIC + "?seconds=30", served.team)).json()
    assert len(short["requests"]) == len(short["p99Ms"]) == 30
    assert short["total"]["requests"] == 3


@pytest.mark.anyio
async def test_a_service_with_no_revision_yet_has_empty_traffic(served: Served) -> None:
    answer = await served.get("/namespaces/team/inferenceservices/fresh/traffic", served.admin)
    assert answer.status_code == 200, answer.text
    assert answer.json()["total"] == {"requests": 0, "errors": 0}
    assert set(answer.json()["p50Ms"]) == {None}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("token", "path", "status", "reason"),
    [
        pytest.param(None, TRAFFIC, 401, "Unauthorized", id="no-token-is-401"),
        pytest.param("not-a-token", TRAFFIC, 401, "Unauthorized", id="bad-token-is-401"),
        pytest.param("other", TRAFFIC, 403, "Forbidden", id="other-namespace-is-403"),
        pytest.param(
            "team",
            "/namespaces/team/inferenceservices/nope/traffic",
            404,
            "NotFound",
            id="unknown-service-is-404",
        ),
        pytest.param("admin", TRAFFIC + "?seconds=301", 400, "BadRequest", id="too-long-is-400"),
        pytest.param("admin", TRAFFIC + "?seconds=x", 400, "BadRequest", id="not-a-number-is-400"),
    ],
)
async def test_the_endpoint_refuses_as_the_api_does(
    served: Served, token: str | None, path: str, status: int, reason: str
) -> None:
    tokens = {"team": served.team, "other": served.other, "admin": served.admin}
    answer = await served.get(path, tokens.get(token or "", token))
    assert answer.status_code == status, answer.text
    assert answer.json()["reason"] == reason
