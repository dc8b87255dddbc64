"""Fluent builders for scheduling tests.

``make_cq("a").cohort("c").nominal(gpu=4).borrowing_limit(gpu=2).build()`` and
``make_wl("w").pods(4, gpu=1).min(2).priority(10).build()`` (pending) or
``.admitted()`` (holding quota); ``world(cqs).running(...).waiting(...).build()``
makes the snapshot.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Self

from cnai.core.quantity import parse_quantity
from cnai.scheduling.admission import (
    AdmittedPodSet,
    AdmittedWorkload,
    ClusterQueue,
    PendingWorkload,
    PodSet,
    Preemption,
    QueueingStrategy,
    Quota,
    Reclaim,
    ResourceGroup,
    Snapshot,
    StarvationGuard,
    WithinQueue,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DEFAULT_FLAVOR = "default"


def q(value: str | int | float) -> Decimal:
    return parse_quantity(value)


class CQBuilder:
    """A ClusterQueue with one resource group over every resource it names."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._cohort = ""
        self._flavors: list[str] = []
        self._nominal: dict[tuple[str, str], Decimal] = {}
        self._borrow: dict[tuple[str, str], Decimal] = {}
        self._lend: dict[tuple[str, str], Decimal] = {}
        self._strategy = QueueingStrategy.BEST_EFFORT_FIFO
        self._preemption = Preemption()
        self._weight = Decimal(1)
        self._guard = StarvationGuard(max_wait_seconds=0, max_bypasses=0)

    def _set(
        self, into: dict[tuple[str, str], Decimal], flavor: str, res: dict[str, str | int]
    ) -> Self:
        if flavor not in self._flavors:
            self._flavors.append(flavor)
        for r, v in res.items():
            into[(flavor, r)] = q(v)
        return self

    def cohort(self, name: str) -> Self:
        self._cohort = name
        return self

    def nominal(self, flavor: str = DEFAULT_FLAVOR, **res: str | int) -> Self:
        return self._set(self._nominal, flavor, res)

    def borrowing_limit(self, flavor: str = DEFAULT_FLAVOR, **res: str | int) -> Self:
        return self._set(self._borrow, flavor, res)

    def lending_limit(self, flavor: str = DEFAULT_FLAVOR, **res: str | int) -> Self:
        return self._set(self._lend, flavor, res)

    def strict(self) -> Self:
        self._strategy = QueueingStrategy.STRICT_FIFO
        return self

    def preempt_within(self, policy: WithinQueue = WithinQueue.LOWER_PRIORITY) -> Self:
        self._preemption = Preemption(policy, self._preemption.reclaim_within_cohort)
        return self

    def reclaim(self, policy: Reclaim = Reclaim.ANY) -> Self:
        self._preemption = Preemption(self._preemption.within_cluster_queue, policy)
        return self

    def borrow_within_cohort(self, max_priority: int | None = None) -> Self:
        p = self._preemption
        self._preemption = Preemption(
            p.within_cluster_queue, p.reclaim_within_cohort, True, max_priority
        )
        return self

    def weight(self, w: str | int | float) -> Self:
        self._weight = q(w)
        return self

    def starvation(self, wait_seconds: int = 0, bypasses: int = 0) -> Self:
        self._guard = StarvationGuard(wait_seconds, bypasses)
        return self

    def build(self) -> ClusterQueue:
        resources = tuple(dict.fromkeys(r for _, r in self._nominal))
        quotas = {
            (f, r): Quota(
                self._nominal.get((f, r), Decimal(0)),
                self._borrow.get((f, r)),
                self._lend.get((f, r)),
            )
            for f in self._flavors
            for r in resources
        }
        group = ResourceGroup(resources, tuple(self._flavors))
        return ClusterQueue(
            self._name,
            (group,),
            quotas,
            self._cohort,
            self._strategy,
            self._preemption,
            self._weight,
            self._guard,
        )


class WLBuilder:
    """A workload: pending (``build``) or admitted (``admitted``)."""

    def __init__(self, name: str) -> None:
        self._key = f"default/{name}"
        self._queue = "main"
        self._cq = "a"
        self._priority = 0
        self._at = T0
        self._sets: list[PodSet] = []
        self._bypassed = 0
        self._can_preempt = True
        self._flavor = DEFAULT_FLAVOR
        self._evicting = False
        self._grace = 30
        self._wants: int | None = None

    def pods(self, count: int, name: str = "main", **requests: str | int) -> Self:
        self._sets.append(PodSet(name, count, {r: q(v) for r, v in requests.items()}))
        return self

    def min(self, n: int) -> Self:
        last = self._sets[-1]
        self._sets[-1] = PodSet(last.name, last.count, last.requests, n)
        return self

    def priority(self, p: int) -> Self:
        self._priority = p
        return self

    def queue(self, name: str) -> Self:
        self._queue = name
        return self

    def cq(self, name: str) -> Self:
        self._cq = name
        return self

    def at(self, seconds: float) -> Self:
        """Created (or admitted) this many seconds after T0."""
        self._at = T0 + timedelta(seconds=seconds)
        return self

    def bypassed(self, n: int) -> Self:
        self._bypassed = n
        return self

    def never_preempts(self) -> Self:
        self._can_preempt = False
        return self

    def flavor(self, name: str) -> Self:
        self._flavor = name
        return self

    def evicting(self) -> Self:
        self._evicting = True
        return self

    def grace(self, seconds: int) -> Self:
        self._grace = seconds
        return self

    def wants(self, count: int) -> Self:
        """An admitted workload resized to ``count`` pods (its single pod set)."""
        self._wants = count
        return self

    def build(self) -> PendingWorkload:
        return PendingWorkload(
            self._key,
            self._queue,
            self._cq,
            self._priority,
            self._at,
            tuple(self._sets),
            self._bypassed,
            self._can_preempt,
        )

    def admitted(self) -> AdmittedWorkload:
        sets = tuple(
            AdmittedPodSet(
                ps.name,
                ps.count,
                ps.requests,
                dict.fromkeys(ps.requests, self._flavor),
                ps.min_count,
                self._wants,
            )
            for ps in self._sets
        )
        return AdmittedWorkload(
            self._key, self._cq, self._priority, self._at, sets, self._evicting, self._grace
        )


def make_cq(name: str) -> CQBuilder:
    return CQBuilder(name)


def make_wl(name: str) -> WLBuilder:
    return WLBuilder(name)


class World:
    """A snapshot: ClusterQueues, running (admitted) and waiting (pending) workloads."""

    def __init__(self, *cqs: CQBuilder) -> None:
        self._cqs = [c.build() for c in cqs]
        self._running: list[AdmittedWorkload] = []
        self._waiting: list[PendingWorkload] = []
        self._fair = True

    def running(self, *wls: WLBuilder) -> Self:
        self._running += [w.admitted() for w in wls]
        return self

    def waiting(self, *wls: WLBuilder) -> Self:
        self._waiting += [w.build() for w in wls]
        return self

    def without_fair_sharing(self) -> Self:
        self._fair = False
        return self

    def build(self) -> Snapshot:
        return Snapshot(
            {c.name: c for c in self._cqs}, tuple(self._running), tuple(self._waiting), self._fair
        )


def world(*cqs: CQBuilder) -> World:
    return World(*cqs)
