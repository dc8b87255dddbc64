"""Preemption: which admitted workloads to stop so that a pending one fits.

Candidates follow the preemptor's ClusterQueue policy (Kueue's): ``withinClusterQueue``
picks lower-priority (or equal-priority newer) workloads of its own ClusterQueue;
``reclaimWithinCohort`` picks workloads of other ClusterQueues of the cohort that
borrow; without ``borrowWithinCohort`` the preemptor must then fit in its nominal quota.

The victim set: candidates are tried other-queue first, lowest priority first, newest
first, until the preemptor fits (Kueue's greedy pass); then a bounded search looks for
fewer victims among candidates no higher in priority than the greedy pass needed (so
one higher-priority workload is never evicted to spare two lower ones); then each
victim is given back if the preemptor fits without it, and an elastic victim (minCount
below its admitted count) is shrunk by as few pods as suffice instead of evicted whole.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cached_property

from cnai.scheduling.admission.flavors import Assignment, assign, sizes
from cnai.scheduling.admission.quota import ZERO, Ledger, add, admitted_usage
from cnai.scheduling.admission.snapshot import (
    AdmittedWorkload,
    Amounts,
    ClusterQueue,
    FlavorResource,
    PendingWorkload,
    PodSet,
    Reclaim,
    Snapshot,
    WithinQueue,
)


class PreemptReason(StrEnum):
    """Why a victim is preempted (Kueue's reasons)."""

    IN_CLUSTER_QUEUE = "InClusterQueue"
    IN_COHORT_RECLAMATION = "InCohortReclamation"
    IN_COHORT_RECLAIM_WHILE_BORROWING = "InCohortReclaimWhileBorrowing"


@dataclass(frozen=True)
class Victim:
    """A workload to stop: evicted whole, or shrunk to ``shrink_to`` pods per pod set."""

    workload: AdmittedWorkload
    reason: PreemptReason
    shrink_to: Mapping[str, int] | None = None

    def freed(self) -> Amounts:
        """The quota it gives back once its pods have stopped."""
        return self._freed

    @cached_property
    def _freed(self) -> Amounts:
        full = admitted_usage(self.workload)
        if self.shrink_to is None:
            return full
        return add(full, admitted_usage(self.workload, self.shrink_to), -1)


@dataclass(frozen=True)
class Plan:
    """Victims to stop and where the preemptor fits once they have."""

    assignment: Assignment
    victims: tuple[Victim, ...]


def relevant(cq: ClusterQueue, wl: PendingWorkload) -> set[FlavorResource]:
    """Every flavor-resource the workload could be assigned in its ClusterQueue."""
    out: set[FlavorResource] = set()
    for ps in wl.pod_sets:
        for r, v in ps.requests.items():
            group = cq.group_of(r)
            if v > 0 and group is not None:
                out.update((f, r) for f in group.flavors)
    return out


def _candidates(
    snapshot: Snapshot,
    ledger: Ledger,
    cq: ClusterQueue,
    wl: PendingWorkload,
    admitted: Sequence[AdmittedWorkload],
) -> list[tuple[AdmittedWorkload, PreemptReason]]:
    frs = relevant(cq, wl)
    policy = cq.preemption
    out = []
    for other in admitted:
        if not frs & set(admitted_usage(other)):
            continue
        if other.cluster_queue == cq.name:
            lower = other.priority < wl.priority
            newer_equal = other.priority == wl.priority and other.admitted > wl.created
            ok = (policy.within_cluster_queue == WithinQueue.LOWER_PRIORITY and lower) or (
                policy.within_cluster_queue == WithinQueue.LOWER_OR_NEWER_EQUAL_PRIORITY
                and (lower or newer_equal)
            )
            if ok:
                out.append((other, PreemptReason.IN_CLUSTER_QUEUE))
            continue
        owner = snapshot.cluster_queues.get(other.cluster_queue)
        if owner is None or not cq.cohort or owner.cohort != cq.cohort:
            continue
        reclaim = policy.reclaim_within_cohort
        if reclaim == Reclaim.ANY or (
            reclaim == Reclaim.LOWER_PRIORITY and other.priority < wl.priority
        ):
            out.append((other, PreemptReason.IN_COHORT_RECLAMATION))
        elif policy.borrow_within_cohort and other.priority < wl.priority:
            out.append((other, PreemptReason.IN_COHORT_RECLAIM_WHILE_BORROWING))
    # Other queues' borrowers first, then lowest priority, then newest (Kueue's order).
    out.sort(
        key=lambda c: (c[0].cluster_queue == cq.name, c[0].priority, -c[0].admitted.timestamp())
    )
    return out


def _shrinks(victim: AdmittedWorkload) -> list[dict[str, int]]:
    """Ways to stop part of an elastic victim, fewest pods stopped first."""
    sets = tuple(PodSet(p.name, p.count, p.requests, p.least) for p in victim.pod_sets)
    return sizes(sets)[1:]


# Subsets tried when looking for fewer victims than the greedy pass found (bounds the
# search; past it the greedy, already minimal, set stands).
SEARCH_BUDGET = 2000


class _Trial:
    """The preemptor tried against the ledger with some victims taken out."""

    def __init__(
        self,
        ledger: Ledger,
        cq: ClusterQueue,
        wl: PendingWorkload,
        counts: Mapping[str, int],
        may_borrow: bool,
    ) -> None:
        self.ledger = ledger
        self.cq, self.wl, self.counts, self.may_borrow = cq, wl, counts, may_borrow
        self._room: dict[FlavorResource, Decimal] = {}

    def could_fit(self, victims: Sequence[Victim]) -> bool:
        """A quick necessary condition for :meth:`attempt`: each pod set, alone, has a
        flavor with room once the victims' quota is added to what is free now (stopping
        a victim frees at most its own quota). Prunes most of :func:`_fewest`'s subsets
        without copying the ledger."""
        freed: dict[FlavorResource, Decimal] = {}
        for v in victims:
            for fr, amount in v.freed().items():
                freed[fr] = freed.get(fr, ZERO) + amount
        return self.could_fit_with(freed)

    def could_fit_with(self, freed: Mapping[FlavorResource, Decimal]) -> bool:
        """:meth:`could_fit` with ``freed`` quota per flavor-resource."""
        for ps in self.wl.pod_sets:
            n = self.counts[ps.name]
            for group in self.cq.groups:
                wanted = [
                    (r, v * n) for r, v in ps.requests.items() if v > 0 and r in group.resources
                ]
                if wanted and not any(
                    all(
                        amount <= self.room((flavor, r)) + freed.get((flavor, r), ZERO)
                        for r, amount in wanted
                    )
                    for flavor in group.flavors
                ):
                    return False
        return True

    def room(self, fr: FlavorResource) -> Decimal:
        """What the preemptor's ClusterQueue may take of ``fr`` before any victim stops."""
        found = self._room.get(fr)
        if found is None:
            found = self._room[fr] = self.ledger.available(self.cq, fr)
        return found

    def _without(self, victims: Sequence[Victim]) -> Ledger:
        sim = self.ledger.copy()
        for v in victims:
            sim.charge(v.workload.cluster_queue, v.freed(), -1)
        return sim

    def attempt(self, victims: Sequence[Victim]) -> Assignment | None:
        """Where the preemptor fits once ``victims`` have stopped, or None."""
        sim = self._without(victims)

        def fits(cq: ClusterQueue, amounts: Amounts) -> bool:
            if not sim.fits(cq, amounts):
                return False
            return self.may_borrow or all(
                sim.used(cq.name, fr) + v <= cq.quotas[fr].nominal for fr, v in amounts.items()
            )

        result = assign(self.cq, self.wl.pod_sets, self.counts, fits, sim.available)
        return result if isinstance(result, Assignment) else None

    def borrowing(self, victim: Victim, others: Sequence[Victim]) -> bool:
        """Is the victim's ClusterQueue still borrowing once ``others`` have stopped?"""
        if victim.reason is PreemptReason.IN_CLUSTER_QUEUE:
            return True
        # As ``self._without(others).borrowed(owner, fr) > 0``, without copying the ledger.
        name = victim.workload.cluster_queue
        owner = self.ledger.snapshot.cluster_queues[name]
        mine = [o.freed() for o in others if o.workload.cluster_queue == name]
        for fr in victim.freed() if victim.shrink_to is None else admitted_usage(victim.workload):
            used = self.ledger.used(name, fr)
            for freed in mine:
                used -= freed.get(fr, ZERO)
            quota = owner.quotas.get(fr)
            if used - (quota.nominal if quota else ZERO) > ZERO:
                return True
        return False

    def valid(self, victims: Sequence[Victim]) -> bool:
        """Every reclaimed victim's queue borrows even without the other victims."""
        return all(self.borrowing(v, [o for o in victims if o is not v]) for v in victims)


def _greedy(trial: _Trial, candidates: Sequence[Victim]) -> list[Victim] | None:
    chosen: list[Victim] = []
    for victim in candidates:
        if not trial.borrowing(victim, chosen):
            continue
        chosen.append(victim)
        if trial.attempt(chosen) is not None:
            return chosen
    return None


def _most_freed(pool: Sequence[Victim], k: int) -> dict[FlavorResource, Decimal]:
    """Per flavor-resource, the most that any ``k`` victims of ``pool`` free together."""
    amounts: dict[FlavorResource, list[Decimal]] = {}
    for v in pool:
        for fr, amount in v.freed().items():
            amounts.setdefault(fr, []).append(amount)
    return {fr: sum(heapq.nlargest(k, values), ZERO) for fr, values in amounts.items()}


def _fewest(trial: _Trial, candidates: Sequence[Victim], greedy: list[Victim]) -> list[Victim]:
    """Fewer victims than the greedy pass, no higher in priority than its highest."""
    ceiling = max(v.workload.priority for v in greedy)
    pool = [v for v in candidates if v.workload.priority <= ceiling]
    budget = SEARCH_BUDGET
    for k in range(1, len(greedy)):
        if not trial.could_fit_with(_most_freed(pool, k)):
            # No k victims free enough: every subset of this size fails (counted
            # against the budget as if tried, so the search ends where it did).
            budget -= math.comb(len(pool), k)
            if budget < 0:
                return greedy
            continue
        for combo in itertools.combinations(pool, k):
            budget -= 1
            if budget < 0:
                return greedy
            if trial.could_fit(combo) and trial.valid(combo) and trial.attempt(combo) is not None:
                return list(combo)
    return greedy


def _lighten(trial: _Trial, chosen: list[Victim]) -> list[Victim]:
    """Give back victims the preemptor can do without; shrink elastic ones instead."""
    kept = list(chosen)
    for i in range(len(kept) - 1, -1, -1):
        rest = kept[:i] + kept[i + 1 :]
        if rest and trial.attempt(rest) is not None:
            kept = rest
            continue
        for shrink in _shrinks(kept[i].workload):
            lighter = Victim(kept[i].workload, kept[i].reason, shrink)
            if trial.attempt([*rest[:i], lighter, *rest[i:]]) is not None:
                kept[i] = lighter
                break
    return kept


def _search(trial: _Trial, candidates: Sequence[Victim]) -> Plan | None:
    greedy = _greedy(trial, candidates)
    if greedy is None:
        return None
    chosen = _lighten(trial, _fewest(trial, candidates, _lighten(trial, greedy)))
    found = trial.attempt(chosen)
    assert found is not None  # every step above keeps the preemptor fitting
    return Plan(found, tuple(chosen))


def plan(
    snapshot: Snapshot,
    ledger: Ledger,
    cq: ClusterQueue,
    wl: PendingWorkload,
    admitted: Sequence[AdmittedWorkload],
) -> Plan | None:
    """The fewest victims that let ``wl`` fit at the largest size it can, or None."""
    if not wl.can_preempt:
        return None
    candidates = [Victim(w, r) for w, r in _candidates(snapshot, ledger, cq, wl, admitted)]
    if not candidates:
        return None
    limit = cq.preemption.borrow_max_priority
    while_borrowing = [
        v
        for v in candidates
        if v.workload.priority < wl.priority and (limit is None or v.workload.priority <= limit)
    ]
    for counts in sizes(wl.pod_sets):
        found = _search(_Trial(ledger, cq, wl, counts, may_borrow=False), candidates)
        if found is None and cq.preemption.borrow_within_cohort:
            found = _search(_Trial(ledger, cq, wl, counts, may_borrow=True), while_borrowing)
        if found is not None:
            return found
    return None
