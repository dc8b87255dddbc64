"""API routes that capability packages add beside the resource API.

High-volume records that are not resources (tracking's runs and metrics, later the
gateway) have their own routes. A capability appends a :data:`RouteFactory` to the
platform's ``route_factories``; the platform calls it once its store exists, with a
:class:`RouteContext` giving the API server (for authentication), the state directory,
a place to register what must be closed at shutdown, and ``services``, which the
platform hands on to the controllers (they start after the routes are built).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

from cnai.core.server.front import Lane


@dataclass
class RouteContext:
    """What a capability's routes may use."""

    api: Any  # cnai.core.server.app.ApiServer (authentication, the resource service)
    home: Path  # the platform's state directory (CNAI_HOME)
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    # Shared with the controllers (ControllerContext.services): what a capability opens
    # here and its controllers use too, by a key the capability names.
    services: dict[str, Any] = field(default_factory=dict)
    # The front's lanes (cnai.core.server.front): data paths served ahead of the app.
    lanes: list[Lane] = field(default_factory=list)

    def on_close(self, closer: Callable[[], Awaitable[None]]) -> None:
        """Run ``closer`` when the platform shuts down (after its controllers)."""
        self.closers.append(closer)

    def add_lane(self, lane: Lane) -> None:
        """Serve ``lane.prefix`` in the front, ahead of uvicorn's ASGI cycle (keep an
        ASGI route for it too: a connection that began elsewhere reaches that)."""
        self.lanes.append(lane)


RouteFactory = Callable[[RouteContext], Sequence[BaseRoute]]
