"""Each InferenceService's recent traffic, second by second, for the dashboard's charts.

The gateway adds every request it answers to its service's :class:`Traffic` (kept on the
service's :class:`~cnai.serving.state.Route`, so it goes when the service goes and a
service made again under the same name starts empty). ``GET
/apis/cnai.io/v1alpha1/namespaces/{ns}/inferenceservices/{name}/traffic?seconds=N``
(:func:`traffic_route`) answers the last N seconds (at most :data:`WINDOW_S`) as
columns, one value per second, oldest first::

    {"start": 1718000000, "end": 1718000299, "interval": 1,
     "requests": [...], "errors": [...], "p50Ms": [...], "p99Ms": [...], "meanMs": [...],
     "total": {"requests": R, "errors": E}}

``errors`` are the answers with a 5xx status (the model server's failures and the
gateway's 502, 503 and 504); a 4xx is the client's and counts only in ``requests``.
Latency is from the gateway taking the request to its answer, held time included (as
``cnai_gateway_request_duration_seconds``); the percentiles of a second come from a
histogram of log-spaced buckets 19% wide, so they are within about 10% (Prometheus's
``histogram_quantile`` over finer buckets); a second without requests has ``null``.

Cost: a ring of :data:`WINDOW_S` one-second slots, reused in place. Adding a request is
O(1) and lock-free (the gateway runs on the platform's one event loop): find the slot of
this second (clearing it if it holds an older second), bump three numbers and one
bucket, about 1 us. Memory is bounded by the window and the services that exist: at
most ``WINDOW_S x (4 + BUCKETS)`` numbers per service, only for seconds that had
traffic. Reading the window is O(window x buckets), only when asked.

Prometheus (``/metrics``) remains the place for long-term and cross-service queries;
this is the dashboard's view that needs no Prometheus server.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route as HttpRoute

from cnai.core.auth import authorize
from cnai.core.errors import BadRequest
from cnai.core.server.app import json_response
from cnai.version import API_GROUP, API_VERSION

if TYPE_CHECKING:  # state.py imports this module
    from cnai.serving.state import ServingState

PATH = f"/apis/{API_GROUP}/{API_VERSION}/namespaces/{{ns}}/inferenceservices/{{name}}/traffic"
WINDOW_S = 300  # seconds kept, and the most one answer carries

# Latency buckets: [0, MIN_S), then log-spaced up to MAX_S (PER_DOUBLING per doubling,
# each 2**(1/4) = 1.19 times as wide as the one before), then [MAX_S, inf).
MIN_S = 0.0001
MAX_S = 60.0
PER_DOUBLING = 4
BUCKETS = 2 + math.ceil(math.log2(MAX_S / MIN_S) * PER_DOUBLING)
_LAST = BUCKETS - 1


def bucket(seconds: float) -> int:
    """The histogram bucket of a latency."""
    if seconds < MIN_S:
        return 0
    if not seconds < 2 * MAX_S:  # far in the last bucket (or inf, nan): no log needed
        return _LAST
    return min(1 + int(math.log2(seconds / MIN_S) * PER_DOUBLING), _LAST)


def bucket_bounds(index: int) -> tuple[float, float]:
    """The latencies bucket ``index`` holds, as [low, high)."""
    if index == 0:
        return 0.0, MIN_S
    low = MIN_S * 2 ** ((index - 1) / PER_DOUBLING)
    if index == _LAST:
        return low, math.inf
    return low, MIN_S * 2 ** (index / PER_DOUBLING)


class _Second:
    """One second's counts; its slot in the ring is reused once the second is old."""

    __slots__ = ("errors", "histogram", "requests", "second", "total_s")

    def __init__(self) -> None:
        self.second = -1
        self.requests = 0
        self.errors = 0
        self.total_s = 0.0
        self.histogram: list[int] = []  # allocated on the slot's first request

    def reset(self, second: int) -> None:
        self.second = second
        self.requests = self.errors = 0
        self.total_s = 0.0
        if self.histogram:
            self.histogram[:] = _ZEROS
        else:
            self.histogram = [0] * BUCKETS


_ZEROS = [0] * BUCKETS


def quantile(histogram: list[int], count: int, q: float) -> float:
    """The ``q`` quantile of ``count`` latencies in ``histogram``, interpolated linearly
    within its bucket (the last bucket answers its lower bound)."""
    rank = q * count
    seen = 0
    for index, n in enumerate(histogram):
        if n and seen + n >= rank:
            low, high = bucket_bounds(index)
            if math.isinf(high):
                return low
            return low + (high - low) * max(rank - seen, 0) / n
        seen += n
    return bucket_bounds(_LAST)[0]


class Traffic:
    """One service's requests over the last :data:`WINDOW_S` seconds of ``clock``
    (wall-clock seconds, so that the dashboard can label its axis)."""

    def __init__(self, clock: Callable[[], float] = time.time, window: int = WINDOW_S) -> None:
        self.clock = clock
        self.window = window
        self._ring = [_Second() for _ in range(window)]

    def add(self, status: int, seconds: float) -> None:
        """Count one answered request: its HTTP status and how long it took."""
        second = int(self.clock())
        slot = self._ring[second % self.window]
        if slot.second != second:
            slot.reset(second)
        slot.requests += 1
        if status >= 500:
            slot.errors += 1
        slot.total_s += seconds
        slot.histogram[bucket(seconds)] += 1

    def series(self, seconds: int | None = None) -> dict[str, Any]:
        """The last ``seconds`` seconds (the whole window by default), up to now, as
        columns (see the module's docstring)."""
        span = self.window if seconds is None else max(1, min(seconds, self.window))
        end = int(self.clock())
        out: dict[str, Any] = {"start": end - span + 1, "end": end, "interval": 1}
        columns: dict[str, list[Any]] = {
            k: [] for k in ("requests", "errors", "p50Ms", "p99Ms", "meanMs")
        }
        for second in range(end - span + 1, end + 1):
            slot = self._ring[second % self.window]
            n = slot.requests if slot.second == second else 0
            columns["requests"].append(n)
            columns["errors"].append(slot.errors if n else 0)
            columns["p50Ms"].append(_ms(quantile(slot.histogram, n, 0.5)) if n else None)
            columns["p99Ms"].append(_ms(quantile(slot.histogram, n, 0.99)) if n else None)
            columns["meanMs"].append(_ms(slot.total_s / n) if n else None)
        out.update(columns)
        out["total"] = {"requests": sum(columns["requests"]), "errors": sum(columns["errors"])}
        return out


_NO_TRAFFIC = Traffic()


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def traffic_route(api: Any, state: ServingState) -> HttpRoute:
    """The traffic endpoint, behind the API's tokens: ``get`` on the InferenceService
    (as the gateway asks), which must exist (404 as the resource API says it)."""

    async def traffic(request: Request) -> Response:
        ns, name = request.path_params["ns"], request.path_params["name"]
        principal = api.authenticate(request.headers.get("authorization"))
        authorize(
            principal,
            namespace=ns,
            namespaced=True,
            plural="inferenceservices",
            name=name,
            verb="get",
        )
        seconds = _seconds(request.query_params.get("seconds"))
        await api.service.get("inferenceservices", ns, name)  # NotFound if it is not there
        route = state.routes.get((ns, name))
        found = route.traffic if route is not None else _NO_TRAFFIC  # no revision yet
        return json_response({"namespace": ns, "name": name, **found.series(seconds)})

    return HttpRoute(PATH, traffic, methods=["GET"])


def _seconds(text: str | None) -> int:
    if text is None:
        return WINDOW_S
    try:
        seconds = int(text)
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= WINDOW_S:
        raise BadRequest(f"seconds: must be a whole number from 1 to {WINDOW_S}, not {text!r}")
    return seconds
