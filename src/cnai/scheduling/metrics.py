"""The scheduler's Prometheus metrics (the names of Kueue's, with the ``cnai_`` prefix).

Recorded as the scheduler writes its decisions, into the platform's registry:

- ``cnai_scheduler_admissions_total{cluster_queue}``: workloads admitted;
- ``cnai_scheduler_admission_wait_seconds{cluster_queue}``: how long each waited, from its
  creation, or from its last eviction if it was evicted since, to its admission;
- ``cnai_scheduler_preemptions_total{cluster_queue,reason}``: workloads preempted (stopped
  or shrunk), by the victim's ClusterQueue and why (``InClusterQueue``,
  ``InCohortReclamation``, ...).

How many wait and how many hold quota per ClusterQueue, and the quota in use, are read
from the ClusterQueues' status when scraped (:mod:`cnai.observability`).
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

from cnai.scheduling.api import Workload, WorkloadConditionType

# Admission waits: a tenth of a second to an hour.
WAIT_BUCKETS = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)


class SchedulerMetrics:
    """The scheduler's metric families, in ``registry``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.admissions = Counter(
            "cnai_scheduler_admissions_total",
            "Workloads admitted, by ClusterQueue.",
            ["cluster_queue"],
            registry=registry,
        )
        self.wait = Histogram(
            "cnai_scheduler_admission_wait_seconds",
            "Time from a workload's creation (or last eviction) to its admission.",
            ["cluster_queue"],
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        self.preemptions = Counter(
            "cnai_scheduler_preemptions_total",
            "Workloads preempted (stopped or shrunk), by the victim's ClusterQueue and reason.",
            ["cluster_queue", "reason"],
            registry=registry,
        )

    def admitted(self, before: Workload, cluster_queue: str, now: datetime) -> None:
        """``before`` (its status as it waited) was admitted at ``now``."""
        self.admissions.labels(cluster_queue).inc()
        since = pending_since(before)
        if since is not None:
            self.wait.labels(cluster_queue).observe(max(0.0, (now - since).total_seconds()))

    def preempted(self, cluster_queue: str, reason: str) -> None:
        self.preemptions.labels(cluster_queue, reason).inc()


def pending_since(wl: Workload) -> datetime | None:
    """When ``wl`` began to wait: its last eviction, else its creation."""
    since = wl.metadata.creation_timestamp
    for condition in wl.status.conditions:
        if condition.type == WorkloadConditionType.EVICTED and condition.last_transition_time:
            when = condition.last_transition_time
            since = when if since is None or when > since else since
    return since
