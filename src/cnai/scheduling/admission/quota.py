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
        for wl in workloads:
            self.charge(wl.cluster_queue, admitted_usage(wl))

    def copy(self) -> Ledger:
        other = Ledger(self.snapshot, ())
        other.usage = defaultdict(dict, {k: dict(v) for k, v in self.usage.items()})
        other.frozen = defaultdict(set, {k: set(v) for k, v in self.frozen.items()})
        other.frozen_for = dict(self.frozen_for)
        return other

    def charge(self, cq: str, amounts: Amounts, sign: int = 1) -> None:
        self.usage[cq] = add(self.usage[cq], amounts, sign)

    def used(self, cq: str, fr: FlavorResource) -> Decimal:
        return self.usage.get(cq, {}).get(fr, ZERO)

    def borrowed(self, cq: ClusterQueue, fr: FlavorResource) -> Decimal:
        quota = cq.quotas.get(fr)
        return max(ZERO, self.used(cq.name, fr) - (quota.nominal if quota else ZERO))

    def pool(self, cq: ClusterQueue, fr: FlavorResource) -> Decimal:
        """What the cohort lends in ``fr`` in all (the sum of lending limits)."""
        members = self.snapshot.cohort_members(cq)
        return sum((m.quotas[fr].lendable for m in members if fr in m.quotas), ZERO)

    def pool_free(self, cq: ClusterQueue, fr: FlavorResource) -> Decimal:
        members = self.snapshot.cohort_members(cq)
        drawn = sum(
            (max(ZERO, self.used(m.name, fr) - m.quotas[fr].guaranteed))
            for m in members
            if fr in m.quotas
        )
        return self.pool(cq, fr) - drawn

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
