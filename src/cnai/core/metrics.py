"""The platform's Prometheus registry, shared by the parts that record into it.

One ``CollectorRegistry`` per platform rather than prometheus-client's global one, so
that two platforms in one process (tests) never share counts. The platform puts it in
the ``services`` it hands to route and controller factories under :data:`METRICS`;
:func:`metrics_registry` finds it there (or makes it, for a part built alone in a test).
The API server and the controller manager record into it; capabilities add their own
families (the scheduler's admissions, the serving gateway's requests), and the
observability capability serves it on ``/metrics``.

Names follow Prometheus conventions: a ``cnai_`` prefix, the unit as a suffix
(``_seconds``), ``_total`` on counters, and labels whose values are bounded (kinds,
controllers, queues, services), never a request's path or an object's uid.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry

METRICS = "metrics"  # the key in the platform's services

# Request and reconcile latencies: 1 ms to 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def metrics_registry(services: dict[str, Any]) -> CollectorRegistry:
    """The registry in ``services``, made there if there is none yet."""
    registry = services.get(METRICS)
    if registry is None:
        registry = services[METRICS] = CollectorRegistry()
    assert isinstance(registry, CollectorRegistry)
    return registry
