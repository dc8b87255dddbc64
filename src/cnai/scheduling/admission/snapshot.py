"""The scheduler's input: a frozen snapshot of queues, quota and workloads.

The shell builds a :class:`Snapshot` from the store (ClusterQueues, admitted and pending
Workloads, priorities resolved) and hands it to :func:`~.scheduler.schedule`; nothing
here does I/O. Quantities are :class:`~decimal.Decimal` base units (cores, bytes,
devices), as :func:`cnai.core.quantity.parse_quantity` returns them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from functools import cached_property
from typing import NamedTuple

# A flavor and a resource in it: the unit quota is given and used in.
FlavorResource = tuple[str, str]
# Amounts per flavor and resource (usage, requests, capacity).
Amounts = Mapping[FlavorResource, Decimal]


class QueueingStrategy(StrEnum):
    """StrictFIFO: a head that does not fit blocks its queue. BestEffortFIFO: it does not."""

    STRICT_FIFO = "StrictFIFO"
    BEST_EFFORT_FIFO = "BestEffortFIFO"


class WithinQueue(StrEnum):
    """Which workloads of the same ClusterQueue may be preempted."""

    NEVER = "Never"
    LOWER_PRIORITY = "LowerPriority"
    LOWER_OR_NEWER_EQUAL_PRIORITY = "LowerOrNewerEqualPriority"


class Reclaim(StrEnum):
    """Which borrowing workloads of other ClusterQueues may be preempted."""

    NEVER = "Never"
    LOWER_PRIORITY = "LowerPriority"
    ANY = "Any"


@dataclass(frozen=True)
class Preemption:
    """A ClusterQueue's preemption policy (Kueue's three knobs)."""

    within_cluster_queue: WithinQueue = WithinQueue.NEVER
    reclaim_within_cohort: Reclaim = Reclaim.NEVER
    # Kueue's borrowWithinCohort LowerPriority: the preemptor may borrow after preempting
    # lower-priority workloads, all at or below ``borrow_max_priority`` when it is set.
    borrow_within_cohort: bool = False
    borrow_max_priority: int | None = None


@dataclass(frozen=True)
class Quota:
    """Quota of one resource in one flavor. None limits are unlimited (borrowing) or all
    of nominal (lending)."""

    nominal: Decimal
    borrowing_limit: Decimal | None = None
    lending_limit: Decimal | None = None

    @property
    def guaranteed(self) -> Decimal:
        """The part of nominal never lent to the cohort."""
        lendable = self.nominal if self.lending_limit is None else self.lending_limit
        return self.nominal - lendable

    @property
    def lendable(self) -> Decimal:
        return self.nominal - self.guaranteed


@dataclass(frozen=True)
class ResourceGroup:
    """Resources assigned one flavor together, and the flavors tried in order."""

    resources: tuple[str, ...]
    flavors: tuple[str, ...]


@dataclass(frozen=True)
class StarvationGuard:
    """After ``max_wait`` seconds or ``max_bypasses`` bypasses, a head is starving (0: off)."""

    max_wait_seconds: int = 900
    max_bypasses: int = 10


@dataclass(frozen=True)
class ClusterQueue:
    """A ClusterQueue's quota and policies."""

    name: str
    groups: tuple[ResourceGroup, ...]
    quotas: Mapping[FlavorResource, Quota]
    cohort: str = ""
    strategy: QueueingStrategy = QueueingStrategy.BEST_EFFORT_FIFO
    preemption: Preemption = field(default_factory=Preemption)
    weight: Decimal = Decimal(1)
    starvation: StarvationGuard = field(default_factory=StarvationGuard)

    def group_of(self, resource: str) -> ResourceGroup | None:
        return self._group_by_resource.get(resource)

    @cached_property
    def _group_by_resource(self) -> Mapping[str, ResourceGroup]:
        out: dict[str, ResourceGroup] = {}
        for g in self.groups:
            for r in g.resources:
                out.setdefault(r, g)
        return out


@dataclass(frozen=True)
class PodSet:
    """Identical pods admitted all or nothing: ``count`` wanted, ``min_count`` enough."""

    name: str
    count: int
    requests: Mapping[str, Decimal]
    min_count: int | None = None

    @property
    def least(self) -> int:
        return self.count if self.min_count is None else self.min_count


@dataclass(frozen=True)
class PendingWorkload:
    """A workload waiting for quota, with what it needs and how long it has waited."""

    key: str  # namespace/name
    queue: str  # its LocalQueue's name, for messages
    cluster_queue: str  # "" when its LocalQueue names no known ClusterQueue
    priority: int
    created: datetime  # when it entered the queue (FIFO order)
    pod_sets: tuple[PodSet, ...]
    bypassed: int = 0  # times later workloads were admitted past it
    can_preempt: bool = True  # False for PriorityClass preemptionPolicy Never

    # Derived once per object: a cycle reads them for every pending workload, and a
    # shell that keeps its PendingWorkloads between cycles reads them for free.

    @cached_property
    def order(self) -> tuple[int, datetime, str]:
        """Queue order: higher priority first, then first come first served."""
        return (-self.priority, self.created, self.key)

    @cached_property
    def identity(self) -> tuple[object, ...]:
        """Every field but the bypass count."""
        return (
            self.queue,
            self.cluster_queue,
            self.priority,
            self.created,
            self.pod_sets,
            self.can_preempt,
        )

    @cached_property
    def shape(self) -> str:
        """The pod sets (names, counts, minimums, requests) as one canonical string.

        A string, not a tuple: a cycle hashes it for every pending workload, and a
        string caches its hash. Equal strings mean equal pod sets (the converse need
        not hold: ``1`` and ``1.0`` differ here, which only costs a cache miss)."""
        return repr(
            tuple(
                (ps.name, ps.count, ps.min_count, tuple(sorted(ps.requests.items())))
                for ps in self.pod_sets
            )
        )

    @cached_property
    def least_requests(self) -> Mapping[str, Decimal]:
        """Total requests per resource at the smallest admissible size."""
        out: dict[str, Decimal] = {}
        for ps in self.pod_sets:
            for r, v in ps.requests.items():
                if v > 0:
                    out[r] = out.get(r, Decimal(0)) + v * ps.least
        return out

    @cached_property
    def total_requests(self) -> Mapping[str, Decimal]:
        """Total requests per resource at the full size."""
        out: dict[str, Decimal] = {}
        for ps in self.pod_sets:
            for r, v in ps.requests.items():
                out[r] = out.get(r, Decimal(0)) + v * ps.count
        return out


@dataclass(frozen=True)
class AdmittedPodSet:
    """An admitted pod set: its count, the flavors it got, and the count it wants."""

    name: str
    count: int
    requests: Mapping[str, Decimal]
    flavors: Mapping[str, str]  # resource -> flavor
    min_count: int | None = None
    desired: int | None = None  # spec count when the workload was resized; None = count

    @property
    def least(self) -> int:
        return self.count if self.min_count is None else self.min_count

    @property
    def wanted(self) -> int:
        return self.count if self.desired is None else self.desired


@dataclass(frozen=True)
class AdmittedWorkload:
    """A workload holding quota. An evicting one still holds it until its pods stopped."""

    key: str
    cluster_queue: str
    priority: int
    admitted: datetime
    pod_sets: tuple[AdmittedPodSet, ...]
    evicting: bool = False
    grace_seconds: int = 30  # SIGTERM to SIGKILL, from its pods' spec

    @cached_property
    def usage(self) -> Amounts:
        """Quota it holds per flavor and resource (read often: computed once)."""
        out: dict[FlavorResource, Decimal] = {}
        for ps in self.pod_sets:
            for resource, per_pod in ps.requests.items():
                if per_pod and resource in ps.flavors:
                    fr = (ps.flavors[resource], resource)
                    out[fr] = out.get(fr, Decimal(0)) + per_pod * ps.count
        return out


# A cohort's usage when a workload failed: for each member ClusterQueue in order and each
# flavor-resource it has quota for (in its ``quotas`` order), the quota held, then the
# quota promised. Flat, so that a cycle compares it with the usage now in one C loop.
UsageFloor = tuple[Decimal, ...]


class Inadmissible(NamedTuple):
    """A workload that waited for quota (no fit, no preemption) and the facts it failed
    against: its cohort's quota and policies and its usage then (Kueue's inadmissible
    list). While the workload, those policies and quotas are unchanged, no usage in the
    cohort is below ``floor`` and the workload is not starving, trying it again gives
    the same answer, so a later cycle skips it (see ``schedule``)."""

    workload: str
    identity: tuple[object, ...]  # what of the workload the answer depends on
    config: tuple[ClusterQueue, ...]  # its cohort's members (itself alone without one)
    floor: UsageFloor
    why: str


@dataclass(frozen=True)
class Snapshot:
    """Everything one scheduling cycle reads. ``pending`` may be in any order.

    ``inadmissible``: the previous cycle's ``Decisions.inadmissible``, carried by the
    shell; an entry whose facts still hold lets this cycle skip the workload.
    """

    cluster_queues: Mapping[str, ClusterQueue]
    admitted: tuple[AdmittedWorkload, ...] = ()
    pending: tuple[PendingWorkload, ...] = ()
    fair_sharing: bool = True
    inadmissible: Mapping[str, Inadmissible] = field(default_factory=dict)

    def cohort_members(self, cq: ClusterQueue) -> tuple[ClusterQueue, ...]:
        """The ClusterQueues sharing ``cq``'s cohort (itself alone without one)."""
        if not cq.cohort:
            return (cq,)
        return tuple(c for c in self.cluster_queues.values() if c.cohort == cq.cohort)

    @property
    def cohorts(self) -> Mapping[str, tuple[str, ...]]:
        """Cohort name to member ClusterQueue names."""
        out: dict[str, tuple[str, ...]] = {}
        for cq in self.cluster_queues.values():
            if cq.cohort:
                out[cq.cohort] = (*out.get(cq.cohort, ()), cq.name)
        return out
