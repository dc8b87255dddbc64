"""Watch streams seen from a client: fan-out consumers and the delivery-latency probe.

Both run as asyncio tasks on the benchmark's event loop (pinned to the client CPU), over
httpx streaming responses of ``?watch=true&resourceVersion=RV``. Times are
``time.perf_counter()`` (CLOCK_MONOTONIC), taken when the client sends a create and
when its event line is read from the stream, so a latency includes the client's own
reading, as a user's would.

Watches are opened without ``timeoutSeconds`` by default, as cnai's own client does; the
tasks here are cancelled (closing their connections) when the benchmark is done.
``timeout_seconds`` adds the parameter, as Kubernetes' client-go reflectors always do,
to measure that server path too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

SECRETS = "/apis/cnai.io/v1alpha1/namespaces/default/secrets"
ERROR_LINE = b'{"type":"ERROR"'


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def watch_params(resource_version: str, timeout_seconds: int | None) -> dict[str, str]:
    params = {"watch": "true", "resourceVersion": resource_version}
    if timeout_seconds is not None:
        params["timeoutSeconds"] = str(timeout_seconds)
    return params


async def current_resource_version(client: httpx.AsyncClient) -> tuple[str, int]:
    """The secrets list's resourceVersion and how many items it had."""
    resp = await client.get(SECRETS)
    resp.raise_for_status()
    body = resp.json()
    return str(body["metadata"]["resourceVersion"]), len(body["items"])


@dataclass
class FanoutWatcher:
    """One watch stream that only counts the events it receives (one line each).

    A stream the server ends (an ``ERROR`` event, such as 410 Expired for a watcher that
    fell too far behind) is marked ``ended_early``; its ERROR line is not counted.
    """

    events: int = 0
    last_event_at: float = 0.0
    ended_early: bool = False
    expired: bool = False
    error: str | None = None

    async def run(self, client: httpx.AsyncClient, params: dict[str, str]) -> None:
        tail = b""
        try:
            async with client.stream("GET", SECRETS, params=params) as resp:
                resp.raise_for_status()
                async for chunk in resp.aiter_raw():
                    lines = chunk.count(b"\n")
                    if lines:
                        self.events += lines
                        self.last_event_at = time.perf_counter()
                    if ERROR_LINE in tail + chunk:
                        self.expired = True
                    tail = chunk[-len(ERROR_LINE) :]
            self.ended_early = True
            self.events -= self.expired
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.ended_early = True
            self.error = f"{type(exc).__name__}: {exc}"


@dataclass
class Fanout:
    """``n`` open watch streams on the secrets of namespace default."""

    watchers: list[FanoutWatcher] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def start(
        cls, client: httpx.AsyncClient, n: int, resource_version: str, timeout_s: int | None
    ) -> Fanout:
        fanout = cls([FanoutWatcher() for _ in range(n)])
        params = watch_params(resource_version, timeout_s)
        fanout.tasks = [asyncio.create_task(w.run(client, params)) for w in fanout.watchers]
        return fanout

    async def settle(self, expected: int, timeout: float) -> float:
        """Wait until every stream has ``expected`` events; return the last arrival time."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if all(w.events >= expected or w.ended_early for w in self.watchers):
                break
            await asyncio.sleep(0.01)
        return max((w.last_event_at for w in self.watchers), default=0.0)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def summary(self) -> list[dict[str, Any]]:
        return [
            {
                "events": w.events,
                "ended_early": w.ended_early,
                "expired": w.expired,
                "error": w.error,
            }
            for w in self.watchers
        ]


def _secret(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": "bench-latency"}},
        "data": {"password": "c2VjcmV0LXZhbHVl"},
    }


@dataclass
class LatencyProbe:
    """Creates ``count`` objects at ``rate``/s and times each one's arrival on a watch."""

    count: int = 1000
    rate: float = 200.0
    prefix: str = "lat"
    timeout_seconds: int | None = None
    sent: dict[str, float] = field(default_factory=dict)
    received: dict[str, float] = field(default_factory=dict)
    failed_creates: int = 0
    send_seconds: float = 0.0

    async def run(self, client: httpx.AsyncClient, timeout: float) -> None:
        rv, _ = await current_resource_version(client)
        ready = asyncio.Event()
        watcher = asyncio.create_task(self._watch(client, rv, ready))
        try:
            await asyncio.wait_for(ready.wait(), 10)
            await asyncio.wait_for(self._create(client), timeout)
            deadline = time.perf_counter() + 10
            while len(self.received) < len(self.sent) and time.perf_counter() < deadline:
                await asyncio.sleep(0.01)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self, client: httpx.AsyncClient, rv: str, ready: asyncio.Event) -> None:
        params = watch_params(rv, self.timeout_seconds)
        async with client.stream("GET", SECRETS, params=params) as resp:
            resp.raise_for_status()
            ready.set()
            async for line in resp.aiter_lines():
                now = time.perf_counter()
                if not line:
                    continue
                name = json.loads(line)["object"]["metadata"]["name"]
                if name.startswith(self.prefix + "-"):
                    self.received.setdefault(name, now)

    async def _create(self, client: httpx.AsyncClient) -> None:
        start = time.perf_counter()
        for i in range(self.count):
            delay = start + i / self.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            name = f"{self.prefix}-{i:05d}"
            self.sent[name] = time.perf_counter()
            resp = await client.post(SECRETS, json=_secret(name))
            if resp.status_code != 201:
                self.failed_creates += 1
                del self.sent[name]
        self.send_seconds = time.perf_counter() - start

    def result(self) -> dict[str, Any]:
        lat = [1000 * (self.received[n] - t) for n, t in self.sent.items() if n in self.received]
        out: dict[str, Any] = {
            "sent": len(self.sent) + self.failed_creates,
            "failed_creates": self.failed_creates,
            "received": len(lat),
            "rate_per_s": round(len(self.sent) / self.send_seconds, 1) if self.send_seconds else 0,
        }
        if lat:
            out["latency_ms"] = {
                "p50": round(percentile(lat, 50), 2),
                "p90": round(percentile(lat, 90), 2),
                "p99": round(percentile(lat, 99), 2),
                "max": round(max(lat), 2),
            }
        return out
