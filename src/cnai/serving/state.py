"""What the InferenceService controller and the gateway share in the platform's process.

The controller publishes, for each service, the share of traffic of each revision and
the replicas that answer (:class:`Route`); the gateway routes requests by it, counts them
into each revision's :class:`~cnai.serving.autoscaler.MetricWindow` (which the
controller's autoscaler reads), and asks the controller to look again when it holds a
request that no replica can take (scale from zero). Everything runs on the platform's
event loop: no locks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from cnai.serving.autoscaler import Metric, MetricWindow
from cnai.serving.traffic import Traffic

SERVING_STATE = "serving.state"  # its key in ControllerContext.services / RouteContext


@dataclass
class Replica:
    """One replica of a revision: where it answers, and the requests in flight on it."""

    name: str
    url: str  # http://HOST:PORT of its model server
    ready: bool = False
    in_flight: int = 0


@dataclass
class RevisionRoute:
    """A revision as the gateway sees it."""

    name: str
    model: str  # the model's name in the server's URLs (the service's name)
    window: MetricWindow
    replicas: dict[str, Replica] = field(default_factory=dict)
    held: int = 0  # requests waiting for a ready replica
    seconds: float = 60.0  # the window's length

    def ready(self) -> dict[str, int]:
        """In-flight counts of the ready replicas, by name."""
        return {r.name: r.in_flight for r in self.replicas.values() if r.ready}

    def in_flight(self) -> int:
        """Requests in flight or held: the revision's concurrency."""
        return sum(r.in_flight for r in self.replicas.values()) + self.held


@dataclass
class Route:
    """A service as the gateway sees it: its revisions and their shares of traffic."""

    namespace: str
    name: str
    shares: dict[str, int] = field(default_factory=dict)
    revisions: dict[str, RevisionRoute] = field(default_factory=dict)
    timeout_s: float = 60.0
    # Its requests second by second, for the dashboard (kept while the service is served).
    traffic: Traffic = field(default_factory=Traffic)


class ServingState:
    """Every service's route, and a way to wake its controller."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self._changed = asyncio.Event()
        # Set by the controller: enqueue a reconcile of (namespace, name).
        self.wake: Callable[[str, str], None] = lambda namespace, name: None

    def route(self, namespace: str, name: str) -> Route | None:
        return self.routes.get((namespace, name))

    def revision(
        self, route: Route, name: str, metric: Metric, seconds: float = 60.0
    ) -> RevisionRoute:
        """The route's revision ``name``, made (with an empty window of ``seconds``) if new
        or if its metric or window changed."""
        found = route.revisions.get(name)
        if found is None or found.window.metric is not metric or found.seconds != seconds:
            found = route.revisions[name] = RevisionRoute(
                name,
                route.name,
                MetricWindow(metric, seconds),
                dict(found.replicas) if found else {},
                seconds=seconds,
            )
        return found

    def remove(self, namespace: str, name: str) -> None:
        self.routes.pop((namespace, name), None)
        self.changed()

    def changed(self) -> None:
        """Tell requests waiting for a replica to look again."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_for_change(self, timeout: float) -> None:
        """Until :meth:`changed` is called or ``timeout`` seconds pass."""
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return
