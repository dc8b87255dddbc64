"""Tracking capability: runs, params, tags, metric histories and (later) artifacts and
the model registry, in a store of their own (``tracking.db``), behind cnai's tracking
API (:mod:`cnai.tracking.routes`) and the same tokens as the resource API.

``register(platform)`` hands the platform the factory of its routes; the store opens
when the platform serves.
"""

from typing import Any as _Any


def register(platform: _Any) -> None:
    """Add the tracking routes where the platform serves an API."""
    from cnai.tracking.routes import route_factory

    factories: list[_Any] | None = getattr(platform, "route_factories", None)
    if factories is not None:
        factories.append(route_factory)
