"""Quota accounting across a cohort: usage, what a ClusterQueue may still take, borrowing.

Kueue's model. For a ClusterQueue ``c`` and one flavor-resource: nominal ``N``,
lending limit ``L`` (default ``N``) and borrowing limit ``B`` (default unlimited). The
guaranteed part ``G = N - L`` is never lent; the cohort pool is the sum of every
member's ``L``, and a member's use beyond its ``G`` draws on that pool. So ``c`` may
still take ``min(N + B - U, max(0, G - U) + pool free)``.

A :class:`Ledger` is the working copy of usage during one cycle; it is local to a
``schedule`` call, which stays a pure function.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from decimal import Decimal

from cnai.scheduling.admission.snapshot import (
    AdmittedWorkload,
    Amounts,
    ClusterQueue,
    FlavorResource,
    Snapshot,
)

ZERO = Decimal(0)
INFINITY = Decimal("Infinity")


def admitted_usage(wl: AdmittedWorkload, counts: Mapping[str, int] | None = None) -> Amounts:
    """Quota a workload holds (at ``counts`` per pod set, if given)."""
    if counts is None:
        return wl.usage
    out: dict[FlavorResource, Decimal] = defaultdict(Decimal)
    for ps in wl.pod_sets:
        n = ps.count if counts is None else counts.get(ps.name, ps.count)
        for resource, per_pod in ps.requests.items():
            if per_pod and resource in ps.flavors:
                out[(ps.flavors[resource], resource)] += per_pod * n
    return dict(out)


def add(a: Amounts, b: Amounts, sign: int = 1) -> dict[FlavorResource, Decimal]:
    out = dict(a)
    for fr, v in b.items():
        out[fr] = out.get(fr, ZERO) + sign * v
    return out


class Ledger:
    """Usage per ClusterQueue during one cycle, and what each may still take."""

    def __init__(self, snapshot: Snapshot, workloads: Iterable[AdmittedWorkload]) -> None:
        self.snapshot = snapshot
        self.usage: dict[str, dict[FlavorResource, Decimal]] = defaultdict(dict)
        # Flavor-resources in which members of a cohort may not borrow (anti-starvation).
        self.frozen: dict[str, set[FlavorResource]] = defaultdict(set)
        self.frozen_for: dict[str, str] = {}  # cohort -> the ClusterQueue it is held for
        # Bumped on every change: ``version`` on any, ``changes[cq]`` on a queue's usage.
        # Lets a cycle reuse results computed against an unchanged ledger.
        self.version = 0
        self.changes: dict[str, int] = defaultdict(int)
        self.cohort_changes: dict[str, int] = defaultdict(int)  # by cohort (or lone queue)
        self.touched: set[str] = set()  # queues charged since a caller last cleared it
        # Static per snapshot (quotas do not change in a cycle): shared by copies.
        self._members: dict[str, tuple[ClusterQueue, ...]] = {}
        self._pools: dict[tuple[str, FlavorResource], Decimal] = {}
        # pool_free per (cohort, flavor-resource), with the cohort's version it is for.
        self._free: dict[tuple[str, FlavorResource], tuple[int, Decimal]] = {}
        # One charge per ClusterQueue (a pass builds two ledgers over every admitted
        # workload); the sums are added in workload order, as charges one by one would.
        totals: dict[str, dict[FlavorResource, Decimal]] = defaultdict(dict)
        for wl in workloads:
            mine = totals[wl.cluster_queue]
            for fr, v in admitted_usage(wl).items():
                mine[fr] = mine.get(fr, ZERO) + v
        for cq, amounts in totals.items():
            self.charge(cq, amounts)

    def copy(self) -> Ledger:
        other = Ledger(self.snapshot, ())
        other._members, other._pools = self._members, self._pools
        other.usage = defaultdict(dict, {k: dict(v) for k, v in self.usage.items()})
        other.frozen = defaultdict(set, {k: set(v) for k, v in self.frozen.items()})
        other.frozen_for = dict(self.frozen_for)
        other.version, other.changes = self.version, defaultdict(int, self.changes)
        other.cohort_changes = defaultdict(int, self.cohort_changes)
        return other

    def charge(self, cq: str, amounts: Amounts, sign: int = 1) -> None:
        self.usage[cq] = add(self.usage[cq], amounts, sign)
        self.version += 1
        self.changes[cq] += 1
        owner = self.snapshot.cluster_queues.get(cq)
        self.cohort_changes[owner.cohort or owner.name if owner else cq] += 1
        self.touched.add(cq)

    def cohort_version(self, cq: ClusterQueue) -> int:
        """Bumped whenever usage in ``cq``'s cohort (or ``cq`` alone) changes."""
        return self.cohort_changes[cq.cohort or cq.name]

    def used(self, cq: str, fr: FlavorResource) -> Decimal:
        return self.usage.get(cq, {}).get(fr, ZERO)

    def borrowed(self, cq: ClusterQueue, fr: FlavorResource) -> Decimal:
        quota = cq.quotas.get(fr)
        return max(ZERO, self.used(cq.name, fr) - (quota.nominal if quota else ZERO))

    def members(self, cq: ClusterQueue) -> tuple[ClusterQueue, ...]:
        """``snapshot.cohort_members``, computed once per cohort."""
        if not cq.cohort:
            return (cq,)
        found = self._members.get(cq.cohort)
        if found is None:
            found = self._members[cq.cohort] = self.snapshot.cohort_members(cq)
        return found

    def pool(self, cq: ClusterQueue, fr: FlavorResource) -> Decimal:
        """What the cohort lends in ``fr`` in all (the sum of lending limits)."""
        key = (cq.cohort or f"\0{cq.name}", fr)
        found = self._pools.get(key)
        if found is None:
            members = self.members(cq)
            found = sum((m.quotas[fr].lendable for m in members if fr in m.quotas), ZERO)
            self._pools[key] = found
        return found

    def pool_free(self, cq: ClusterQueue, fr: FlavorResource) -> Decimal:
        """What the cohort can still lend in ``fr`` (kept until its usage changes)."""
        key, version = (cq.cohort, fr), self.cohort_changes[cq.cohort or cq.name]
        found = self._free.get(key)
        if found is not None and found[0] == version:
            return found[1]
        members = self.members(cq)
        drawn = sum(
            (max(ZERO, self.used(m.name, fr) - m.quotas[fr].guaranteed))
            for m in members
            if fr in m.quotas
        )
        free = self.pool(cq, fr) - drawn
        self._free[key] = (version, free)
        return free

    def available(self, cq: ClusterQueue, fr: FlavorResource) -> Decimal:
        """How much more of ``fr`` the ClusterQueue may take now."""
        quota = cq.quotas.get(fr)
        if quota is None:
            return ZERO
        used = self.used(cq.name, fr)
        if not cq.cohort:
            return max(ZERO, quota.nominal - used)
        cap = INFINITY if quota.borrowing_limit is None else quota.nominal + quota.borrowing_limit
        if self._frozen(cq, fr):
            cap = quota.nominal
        own = max(ZERO, quota.guaranteed - used)
        return max(ZERO, min(cap - used, own + self.pool_free(cq, fr)))

    def capacity(self, cq: ClusterQueue, fr: FlavorResource) -> Decimal:
        """The most of ``fr`` the ClusterQueue could ever hold (an empty cohort)."""
        quota = cq.quotas.get(fr)
        if quota is None:
            return ZERO
        if not cq.cohort:
            return quota.nominal
        cap = INFINITY if quota.borrowing_limit is None else quota.nominal + quota.borrowing_limit
        return min(cap, quota.guaranteed + self.pool(cq, fr))

    def fits(self, cq: ClusterQueue, amounts: Amounts) -> bool:
        return all(v <= self.available(cq, fr) for fr, v in amounts.items() if v > 0)

    def freeze_borrowing(self, cq: ClusterQueue, frs: Iterable[FlavorResource]) -> None:
        """Hold the cohort's free capacity in ``frs`` for ``cq``: no other member borrows it."""
        if cq.cohort and cq.cohort not in self.frozen_for:
            self.frozen_for[cq.cohort] = cq.name
            self.frozen[cq.cohort].update(frs)
            self.version += 1

    def _frozen(self, cq: ClusterQueue, fr: FlavorResource) -> bool:
        holder = self.frozen_for.get(cq.cohort)
        return holder is not None and holder != cq.name and fr in self.frozen[cq.cohort]

    def share(self, cq: ClusterQueue, extra: Amounts | None = None) -> Decimal:
        """Dominant resource share: the largest fraction of the cohort's lendable pool
        the ClusterQueue borrows (with ``extra`` added), divided by its weight."""
        if not cq.cohort:
            return ZERO
        best = ZERO
        for fr, quota in cq.quotas.items():
            pool = self.pool(cq, fr)
            used = self.used(cq.name, fr) + (extra or {}).get(fr, ZERO)
            if pool > 0:
                best = max(best, max(ZERO, used - quota.nominal) / pool)
        if best == 0:
            return ZERO
        return INFINITY if cq.weight == 0 else best / cq.weight
