"""Observability: the platform's Prometheus metrics on ``/metrics`` (DESIGN.md section 4).

The parts of the platform record into one registry (:mod:`cnai.core.metrics`): the API
server its requests, the controller manager its reconciles, the scheduler its
admissions and preemptions, the serving gateway its inference requests. This capability
serves that registry, with what is read when scraped: queue depths and quota per
ClusterQueue, pods by phase, training restarts, the platform process's own CPU and
memory, and, where GPUs exist, each GPU's utilization and memory under the DCGM
exporter's names (:mod:`cnai.observability.metrics`).
"""

from typing import Any as _Any


def register(platform: _Any) -> None:
    """Serve ``/metrics`` where the platform serves."""
    from cnai.observability.metrics import route_factory

    routes: list[_Any] | None = getattr(platform, "route_factories", None)
    if routes is not None:
        routes.append(route_factory)
