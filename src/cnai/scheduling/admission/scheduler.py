"""``schedule(snapshot, now) -> Decisions``: one admission cycle, a pure function.

Phases, as Kueue's ``schedule()``:

1. Order each ClusterQueue's pending workloads (priority, then FIFO) and find the
   starving ones (waited past ``starvationGuard``).
2. Repeatedly take the best next candidate over all ClusterQueues (starving first, then
   fair share, priority, age; see :mod:`.ordering`) and:
   a. admit it at the largest size that fits now and takes no quota promised to a
      preemptor (all or nothing per pod set, flavors in order);
   b. else, if it can never fit, mark it inadmissible;
   c. else, if it fits once workloads already being preempted have stopped, let it wait
      for them (their freed quota is held for it);
   d. else plan a minimal preemption within its policy and wait for the victims'
      grace period; the freed quota is held for it;
   e. else it waits for quota. A StrictFIFO queue, or one whose head is starving,
      admits nothing behind a head that waits; a starving head also stops the rest of
      the cohort from borrowing what it needs, so freed capacity gathers for it.
3. Grow admitted elastic workloads that asked for more, where quota is left over.
4. Count bypasses, and say in words why each workload waits.
5. Summarize each ClusterQueue's usage for its status.

Inadmissible set (Kueue's): a workload that waited for quota (step e, not starving,
not heading a StrictFIFO queue) is reported in ``Decisions.inadmissible`` with the
facts it failed against; the next cycle (``Snapshot.inadmissible``) skips it in
phase 2 while those facts hold: the workload and its cohort's quotas and policies are
unchanged, no usage in its cohort went below what it saw, and it is not starving.
Usage only grows within a cycle and fit is monotone in usage, so a skipped workload
would not have fitted. It still waits, keeps its position and counts bypasses.
"""

from __future__ import annotations

import functools
import heapq
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter

from cnai.scheduling.admission import reasons
from cnai.scheduling.admission.decisions import (
    Admit,
    Decisions,
    Preempt,
    Resize,
    Wait,
    WaitReason,
)
from cnai.scheduling.admission.flavors import Assignment, assign, fit, least, sizes
from cnai.scheduling.admission.ordering import Starvation, positions, queues, rank
from cnai.scheduling.admission.preemption import Plan, plan, relevant
from cnai.scheduling.admission.quota import Ledger, add, admitted_usage
from cnai.scheduling.admission.snapshot import (
    Amounts,
    ClusterQueue,
    FlavorResource,
    Inadmissible,
    PendingWorkload,
    PodSet,
    QueueingStrategy,
    Snapshot,
    UsageFloor,
    WithinQueue,
)
from cnai.scheduling.admission.summary import Pending, Tally, summarize


class _Cycle:
    """The working state of one call to :func:`schedule` (never outlives it)."""

    def __init__(self, snapshot: Snapshot, now: datetime) -> None:
        self.snapshot, self.now = snapshot, now
        live = [w for w in snapshot.admitted if not w.evicting]
        # ``held``: quota as it is now (evicting workloads still hold theirs).
        # ``promised``: as it will be once evictions end and preemptors are admitted.
        self.held = Ledger(snapshot, snapshot.admitted)
        self.promised = Ledger(snapshot, live)
        self.preemptible = list(live)
        self.ordered = queues(snapshot)
        self.starving = Starvation(now)
        self.admits: list[Admit] = []
        self.preempts: list[Preempt] = []
        # Why each workload waits, and its index in its ClusterQueue's order (built
        # into ``Wait`` once bypasses are counted).
        self.waits: dict[str, tuple[WaitReason, str, bool, int]] = {}
        self.resizes: list[Resize] = []
        self.blocked: dict[str, tuple[str, str]] = {}  # cq -> (head, why)
        self.admitted_at: dict[str, list[int]] = defaultdict(list)  # cq -> queue indexes
        # Equivalence key -> (``loosened`` then, why) of a workload that waited for quota.
        # Within a cycle usage only grows and preemption candidates only go, except
        # that a preemption frees promised quota: ``loosened`` counts those per cohort.
        # While its count is unchanged when its turn comes, an equivalent workload waits
        # for the same reason (Kueue's scheduling-equivalence hashing).
        self.verdicts: dict[tuple[object, ...], tuple[int, str]] = {}
        self.loosened: dict[str, int] = defaultdict(int)  # per cohort (or lone queue)
        # The inadmissible set: this cycle's entries, and per-cycle caches for them.
        self.inadmissible: dict[str, Inadmissible] = {}
        self._configs: dict[str, tuple[ClusterQueue, ...]] = {}
        self._floors: dict[tuple[str, int, int], UsageFloor] = {}
        # Whether an earlier entry's config (by id) is the same as now, and per cohort
        # whether its floor (by id) still holds (forgotten when a preemption frees quota
        # in the cohort).
        self._same_config: dict[int, bool] = {}
        self._floor_ok: dict[str, dict[int, bool]] = defaultdict(dict)

    # The inadmissible set.

    def config(self, cq: ClusterQueue) -> tuple[ClusterQueue, ...]:
        found = self._configs.get(cq.cohort or cq.name)
        if found is None:
            found = self._configs[cq.cohort or cq.name] = self.held.members(cq)
        return found

    def mark_inadmissible(self, cq: ClusterQueue, wl: PendingWorkload, why: str) -> None:
        """Record that ``wl`` waits for quota against the ledgers as they are now."""
        if cq.cohort and self.held.frozen_for.get(cq.cohort, cq.name) != cq.name:
            return  # capacity held for another queue: it may fit once that is over
        members = self.config(cq)
        # The floor depends on the usage of the cohort's members only.
        at = (cq.cohort or cq.name, self.held.cohort_version(cq), self.promised.cohort_version(cq))
        floor = self._floors.get(at)
        if floor is None:
            floor = tuple(
                (m.name, fr, self.held.used(m.name, fr), self.promised.used(m.name, fr))
                for m in members
                for fr in m.quotas
            )
            self._floors[at] = floor
        self.inadmissible[wl.key] = Inadmissible(wl.key, wl.identity, members, floor, why)

    def holds(
        self, entry: Inadmissible, wl: PendingWorkload, config: tuple[ClusterQueue, ...]
    ) -> bool:
        """Do the facts of an earlier inadmissible ``entry`` for ``wl`` (not starving,
        in a queue whose cohort is ``config`` now) still hold?

        Checked when the workload's turn comes. Usage only grows within a cycle until a
        preemption frees promised quota, so floor checks are kept until then."""
        if entry.identity is not wl.identity and entry.identity != wl.identity:
            return False
        if entry.config is not config:
            ok = self._same_config.get(id(entry.config))
            if ok is None:
                ok = self._same_config[id(entry.config)] = entry.config == config
            if not ok:
                return False
        known = self._floor_ok[config[0].cohort or config[0].name]
        ok = known.get(id(entry.floor))
        if ok is None:
            held, promised = self.held, self.promised
            ok = known[id(entry.floor)] = all(
                held.used(m, fr) >= h and promised.used(m, fr) >= p for m, fr, h, p in entry.floor
            )
        return ok

    # Quota checks against both ledgers.

    def fits(self, cq: ClusterQueue, amounts: Amounts) -> bool:
        return self.held.fits(cq, amounts) and self.promised.fits(cq, amounts)

    def room(self, cq: ClusterQueue, fr: FlavorResource) -> Decimal:
        return min(self.held.available(cq, fr), self.promised.available(cq, fr))

    def charge(self, cq: str, amounts: Amounts) -> None:
        self.held.charge(cq, amounts)
        self.promised.charge(cq, amounts)

    # Outcomes.

    def wait(
        self, wl: PendingWorkload, reason: WaitReason, why: str, index: int, hungry: bool = False
    ) -> None:
        self.waits[wl.key] = (reason, why, hungry, index)

    def admit(self, cq: ClusterQueue, wl: PendingWorkload, found: Assignment, index: int) -> None:
        borrowing = any(
            self.held.used(cq.name, fr) + v > cq.quotas[fr].nominal for fr, v in found.usage.items()
        )
        self.charge(cq.name, found.usage)
        self.admits.append(Admit(wl.key, cq.name, found.pod_sets, borrowing))
        self.admitted_at[cq.name].append(index)

    def preempt(self, cq: ClusterQueue, wl: PendingWorkload, chosen: Plan) -> str:
        # Victims are in the preemptor's cohort: only its verdicts and floors lapse.
        self.loosened[cq.cohort or cq.name] += 1
        self._floor_ok.pop(cq.cohort or cq.name, None)
        for v in chosen.victims:
            self.promised.charge(v.workload.cluster_queue, v.freed(), -1)
            self.preemptible.remove(v.workload)
            what = "evicted" if v.shrink_to is None else f"shrunk to {_pods(v.shrink_to)}"
            message = (
                f"{what} by {wl.key} (priority {wl.priority}) to free quota in {reasons.where(cq)}"
            )
            kill = self.now + timedelta(seconds=v.workload.grace_seconds)
            self.preempts.append(
                Preempt(
                    v.workload.key,
                    v.workload.cluster_queue,
                    wl.key,
                    v.reason,
                    message,
                    kill,
                    v.shrink_to,
                )
            )
        self.promised.charge(cq.name, chosen.assignment.usage)
        names = ", ".join(v.workload.key for v in chosen.victims)
        grace = max(v.workload.grace_seconds for v in chosen.victims)
        return (
            f"preempting {len(chosen.victims)} workload(s) ({names}); admitted once they "
            f"have stopped (grace period up to {grace}s)"
        )


def _pods(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{n} {name} pods" for name, n in counts.items())


def _never_fits(cycle: _Cycle, cq: ClusterQueue, wl: PendingWorkload) -> str | None:
    """Why the workload could not fit even in an empty cohort, or None."""
    ledger = cycle.held

    def fits(c: ClusterQueue, amounts: Amounts) -> bool:
        return all(v <= ledger.capacity(c, fr) for fr, v in amounts.items())

    result = assign(cq, wl.pod_sets, least(wl.pod_sets), fits, ledger.capacity)
    if isinstance(result, Assignment):
        return None
    if result.uncovered:
        return reasons.shortage(cq, result)
    return reasons.never_fits(cq, result, result.free)


def _equivalence(cq: ClusterQueue, wl: PendingWorkload) -> tuple[object, ...]:
    """What phase 2's outcome for a workload depends on besides the cycle's state: two
    workloads with the same key fare the same against unchanged ledgers (as Kueue's
    scheduling equivalence hashing)."""
    newer_matters = cq.preemption.within_cluster_queue == WithinQueue.LOWER_OR_NEWER_EQUAL_PRIORITY
    return (cq.name, wl.shape, wl.priority, wl.can_preempt, wl.created if newer_matters else None)


def _try(cycle: _Cycle, cq: ClusterQueue, wl: PendingWorkload, index: int, hungry: bool) -> None:
    """Phase 2 for one candidate (a-e in the module docstring)."""
    # A workload equivalent to one that waited for quota, with no quota freed since,
    # waits for the same reason: skip the fit and the preemption search.
    key = None if hungry else _equivalence(cq, wl)
    if key is not None:
        seen = cycle.verdicts.get(key)
        if seen is not None and seen[0] == cycle.loosened[cq.cohort or cq.name]:
            cycle.wait(wl, WaitReason.NO_QUOTA, seen[1], index)
            if cq.strategy == QueueingStrategy.STRICT_FIFO:
                cycle.blocked[cq.name] = (wl.key, "heads a StrictFIFO queue")
            else:
                cycle.mark_inadmissible(cq, wl, seen[1])
            return
    found = fit(cq, wl.pod_sets, cycle.fits, cycle.room)
    if isinstance(found, Assignment):
        cycle.admit(cq, wl, found, index)
        return
    if (why := _never_fits(cycle, cq, wl)) is not None:
        cycle.wait(wl, WaitReason.INADMISSIBLE, why, index)
        return
    later = fit(cq, wl.pod_sets, cycle.promised.fits, cycle.promised.available)
    if isinstance(later, Assignment):
        cycle.promised.charge(cq.name, later.usage)
        cycle.wait(
            wl,
            WaitReason.WAITING_FOR_PREEMPTION,
            "waiting for preempted workloads to stop",
            index,
            hungry,
        )
    elif (chosen := plan(cycle.snapshot, cycle.promised, cq, wl, cycle.preemptible)) is not None:
        cycle.wait(wl, WaitReason.PREEMPTING, cycle.preempt(cq, wl, chosen), index, hungry)
    else:
        why = reasons.shortage(cq, found)
        if hungry:
            why += "; waited too long: capacity is now held for it"
        elif key is not None:
            cycle.verdicts[key] = (cycle.loosened[cq.cohort or cq.name], why)
            if cq.strategy != QueueingStrategy.STRICT_FIFO:
                cycle.mark_inadmissible(cq, wl, why)
        cycle.wait(wl, WaitReason.NO_QUOTA, why, index, hungry)
    if hungry:
        frs = relevant(cq, wl)
        cycle.held.freeze_borrowing(cq, frs)
        cycle.promised.freeze_borrowing(cq, frs)
    if hungry or cq.strategy == QueueingStrategy.STRICT_FIFO:
        why = "has waited too long" if hungry else "heads a StrictFIFO queue"
        cycle.blocked[cq.name] = (wl.key, why)


def _admission_rounds(cycle: _Cycle) -> None:
    """Phases 1 and 2: take candidates in order until every queue is done or blocked."""
    snapshot = cycle.snapshot
    ordered = dict(cycle.ordered)
    for wl in ordered.pop("", []):
        why = f"clusterqueue {wl.cluster_queue or '(none)'} of queue {wl.queue} does not exist"
        cycle.wait(wl, WaitReason.INADMISSIBLE, why, -1)
    cursor = dict.fromkeys(ordered, 0)
    # A head's rank depends on the head and on its own queue's usage only, so a heap
    # holds each live queue's current head; a queue's entry is replaced when its head
    # moves on or its usage changes (``current`` tells stale entries apart).
    Rank = tuple[int, Decimal, int, datetime, str]
    current: dict[str, Rank] = {}
    heap: list[tuple[Rank, str]] = []
    shares: dict[tuple[object, ...], Decimal] = {}

    earlier = snapshot.inadmissible
    waits, inadmissible, no_quota = cycle.waits, cycle.inadmissible, WaitReason.NO_QUOTA

    def refresh(name: str) -> None:
        items = ordered[name]
        if name in cycle.blocked:
            current.pop(name, None)
            return
        cq, at, n = snapshot.cluster_queues[name], cursor[name], len(items)
        # Pass over the workloads whose earlier inadmissible entry still holds
        # (BestEffortFIFO only). Equivalent workloads that waited in this cycle are not
        # passed over here but at their turn (``_try``): a preemption ranked before
        # them may free quota for them.
        prior = earlier if cq.strategy != QueueingStrategy.STRICT_FIFO else {}
        # Hoisted: this loop runs over the whole backlog each cycle.
        config, holds = cycle.config(cq), cycle.holds
        max_bypasses, cutoff = cq.starvation.max_bypasses, cycle.starving.cutoff(cq)
        while at < n:
            wl = items[at]
            if (max_bypasses > 0 and wl.bypassed >= max_bypasses) or (
                cutoff is not None and wl.created <= cutoff
            ):
                break  # starving: it is tried, in order
            entry = prior.get(wl.key)
            if entry is None or not holds(entry, wl, config):
                break
            waits[wl.key] = (no_quota, entry.why, False, at)
            inadmissible[wl.key] = entry
            at += 1
        cursor[name] = at
        if at >= n:
            current.pop(name, None)
            return
        wl = items[at]
        key = rank(snapshot, cycle.promised, cq, wl, cycle.starving(cq, wl), shares)
        current[name] = key
        heapq.heappush(heap, (key, name))

    for name in ordered:
        refresh(name)
    cycle.promised.touched.clear()
    while heap:
        key, name = heapq.heappop(heap)
        if current.get(name) != key:
            continue  # stale
        cq, wl, index = snapshot.cluster_queues[name], ordered[name][cursor[name]], cursor[name]
        cursor[name] += 1
        _try(cycle, cq, wl, index, cycle.starving(cq, wl))
        for other in cycle.promised.touched | {name}:
            if other in ordered:
                refresh(other)
        cycle.promised.touched.clear()
    for name, items in ordered.items():
        for index in range(cursor[name], len(items)):
            head, why = cycle.blocked[name]
            why = f"waiting behind {head}, which {why} in clusterqueue {name}"
            cycle.wait(items[index], WaitReason.BLOCKED, why, index)


def _growth(cycle: _Cycle) -> None:
    """Phase 3: admitted elastic workloads grow where quota is left (no preemption)."""
    growing = [w for w in cycle.preemptible if any(p.wanted > p.count for p in w.pod_sets)]
    for wl in sorted(growing, key=lambda w: (-w.priority, w.admitted, w.key)):
        cq = cycle.snapshot.cluster_queues.get(wl.cluster_queue)
        if cq is None or cq.name in cycle.blocked:
            continue
        wanted = tuple(PodSet(p.name, p.wanted, p.requests, p.count) for p in wl.pod_sets)
        for counts in sizes(wanted)[:-1]:
            extra = add(admitted_usage(wl, counts), admitted_usage(wl), -1)
            if cycle.fits(cq, extra):
                cycle.charge(cq.name, extra)
                cycle.resizes.append(Resize(wl.key, cq.name, counts))
                cycle.admitted_at[cq.name].append(1 << 30)
                break


def _waits(cycle: _Cycle) -> tuple[tuple[Wait, ...], Pending]:
    """Phase 4, per ClusterQueue in queue order: number each workload's position in its
    LocalQueue, count a bypass for a waiting workload that a later one of its
    ClusterQueue was admitted past, and tally what the waiting ones request.

    This runs over the whole backlog every cycle, so it works a column at a time with
    ``map``/``zip`` (C loops) rather than a statement per workload."""
    waits: list[Wait] = []
    pending: Pending = {}
    why_of, no_quota = cycle.waits.get, WaitReason.NO_QUOTA
    for name, items in cycle.ordered.items():
        last = max(cycle.admitted_at.get(name, ()), default=-1)
        numbers = positions(items)
        found = list(map(why_of, map(_KEY, items)))
        waiting = items
        if None in found:  # some were admitted in this cycle: leave them out
            kept = [i for i, f in enumerate(found) if f is not None]
            waiting = [items[i] for i in kept]
            numbers = [numbers[i] for i in kept]
            found = [found[i] for i in kept]
        if not waiting:
            pending[name] = {}
            continue
        reasons, whys, hungry, indexes = zip(*found, strict=True)
        bypassed = [
            b + 1 if r is no_quota and 0 <= i < last else b
            for b, r, i in zip(map(_BYPASSED, waiting), reasons, indexes, strict=True)
        ]
        rows = zip(
            map(_KEY, waiting),
            map(_CLUSTER_QUEUE, waiting),
            reasons,
            whys,
            numbers,
            bypassed,
            hungry,
            map(_QUEUE, waiting),
            strict=True,
        )
        waits.extend(map(_new_wait, rows))
        some = dict(zip(map(_SHAPE, waiting), waiting, strict=True))
        pending[name] = {s: Tally(some[s], n) for s, n in Counter(map(_SHAPE, waiting)).items()}
    return tuple(waits), pending


_KEY = attrgetter("key")
_CLUSTER_QUEUE = attrgetter("cluster_queue")
_QUEUE = attrgetter("queue")
_BYPASSED = attrgetter("bypassed")
_SHAPE = attrgetter("shape")
# A Wait from a row, without the named tuple's Python-level __new__ (the same object).
_new_wait = functools.partial(tuple.__new__, Wait)


def schedule(snapshot: Snapshot, now: datetime) -> Decisions:
    """Decide one admission cycle over ``snapshot`` at time ``now`` (pure)."""
    cycle = _Cycle(snapshot, now)
    _admission_rounds(cycle)
    _growth(cycle)
    waits, pending = _waits(cycle)
    return Decisions(
        admit=tuple(cycle.admits),
        resize=tuple(cycle.resizes),
        preempt=tuple(cycle.preempts),
        wait=waits,
        usage=summarize(snapshot, cycle.held, cycle.admits, pending),
        inadmissible=cycle.inadmissible,
    )
