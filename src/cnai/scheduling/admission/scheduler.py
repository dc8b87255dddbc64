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
4. Say in words why each workload decided in this cycle waits, and count bypasses
   where a ClusterQueue's starvation guard uses them.
5. Summarize each ClusterQueue's usage for its status.

Inadmissible set (Kueue's): a workload that waited for quota (step e, not starving,
not heading a StrictFIFO queue) is reported in ``Decisions.inadmissible`` with the
facts it failed against; the next cycle (``Snapshot.inadmissible``) skips it in
phase 2 while those facts hold: the workload and its cohort's quotas and policies are
unchanged, no usage in its cohort went below what it saw, and it is not starving.
Usage only grows within a cycle and fit is monotone in usage, so a skipped workload
would not have fitted. It still waits as it did and is not reported again (unless its
bypass count moved). Skipping costs a few C-level column operations per queue and
pass, not a Python statement per waiting workload (``_Queue``), so a cycle's cost
follows the workloads it decides rather than the backlog: the backlog is only counted
(for the queues' pending totals). Positions in a queue are not computed here at all.
"""

from __future__ import annotations

import enum
import functools
import heapq
import operator
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import groupby, repeat
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
from cnai.scheduling.admission.ordering import Starvation, queues, rank
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
        # The workloads decided this cycle that wait: why, and their index in their
        # ClusterQueue's order (built into ``Wait`` once bypasses are counted).
        self.waits: dict[str, tuple[PendingWorkload, WaitReason, str, bool, int]] = {}
        # Per ClusterQueue, ranges of its order skipped as still inadmissible, and the
        # workloads admitted (for the pending tally).
        self.skipped: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.admitted_wls: list[PendingWorkload] = []
        self.queues: dict[str, _Queue] = {}
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
        self._usage: dict[tuple[str, int, int], UsageFloor] = {}
        self._interned: dict[tuple[str, UsageFloor], UsageFloor] = {}
        # Floor (by id) -> (same cohort config, held as the cycle began).
        self.held_at_start: dict[int, tuple[bool, bool]] = {}
        # Whether an earlier entry's config (by id) is the same as now, and per cohort
        # each floor's (by id) answer (see ``floor_holds``; forgotten when a preemption
        # frees quota in the cohort).
        self._same_config: dict[int, bool] = {}
        self._floor_ok: dict[str, dict[int, bool | UsageFloor]] = defaultdict(dict)

    # The inadmissible set.

    def config(self, cq: ClusterQueue) -> tuple[ClusterQueue, ...]:
        found = self._configs.get(cq.cohort or cq.name)
        if found is None:
            found = self._configs[cq.cohort or cq.name] = self.held.members(cq)
        return found

    def usage_now(self, cq: ClusterQueue) -> UsageFloor:
        """The cohort's usage now, in ``UsageFloor`` order (cached per usage version)."""
        at = (cq.cohort or cq.name, self.held.cohort_version(cq), self.promised.cohort_version(cq))
        found = self._usage.get(at)
        if found is None:
            frs = [(m.name, fr) for m in self.config(cq) for fr in m.quotas]
            found = tuple(self.held.used(m, fr) for m, fr in frs) + tuple(
                self.promised.used(m, fr) for m, fr in frs
            )
            found = self._usage[at] = self.intern(cq, found)
        return found

    def intern(self, cq: ClusterQueue, floor: UsageFloor) -> UsageFloor:
        """One object per floor value in a cohort (as it is now), shared with the
        earlier entries that have it: a cycle checks each floor object once, and the
        same usage recurs across passes far more often than it changes."""
        return self._interned.setdefault((cq.cohort or cq.name, floor), floor)

    def mark_inadmissible(self, cq: ClusterQueue, wl: PendingWorkload, why: str) -> None:
        """Record that ``wl`` waits for quota against the ledgers as they are now."""
        if cq.cohort and self.held.frozen_for.get(cq.cohort, cq.name) != cq.name:
            return  # capacity held for another queue: it may fit once that is over
        entry = Inadmissible(wl.key, wl.identity, self.config(cq), self.usage_now(cq), why)
        self.inadmissible[wl.key] = entry

    def same_config(self, entry: Inadmissible, cq: ClusterQueue) -> bool:
        """Is ``cq``'s cohort (members, quotas, policies) as when ``entry`` was marked?"""
        config = self.config(cq)
        if entry.config is config:
            return True
        ok = self._same_config.get(id(entry.config))
        if ok is None:
            ok = self._same_config[id(entry.config)] = entry.config == config
        return ok

    def floor_holds(self, cq: ClusterQueue, floor: UsageFloor) -> bool:
        """Is no usage in ``cq``'s cohort below ``floor`` now? A yes is kept, since
        usage only grows within a cycle until a preemption frees quota in the cohort
        (``preempt`` forgets the answers); a no is kept while usage is unchanged. So
        the answer is as of the moment asked, as each entry's check at its turn must
        be, while entries sharing a floor object share the work."""
        known = self._floor_ok[cq.cohort or cq.name]
        answer = known.get(id(floor))
        if answer is True:
            return True
        now = self.usage_now(cq)
        if answer is now:
            return False
        ok = all(map(operator.ge, now, floor))
        known[id(floor)] = True if ok else now
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
        self.waits[wl.key] = (wl, reason, why, hungry, index)

    def admit(self, cq: ClusterQueue, wl: PendingWorkload, found: Assignment, index: int) -> None:
        borrowing = any(
            self.held.used(cq.name, fr) + v > cq.quotas[fr].nominal for fr, v in found.usage.items()
        )
        self.charge(cq.name, found.usage)
        self.admits.append(Admit(wl.key, cq.name, found.pod_sets, borrowing))
        self.admitted_wls.append(wl)
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


# A Wait from a row, without the named tuple's Python-level __new__ (the same object).
_new_wait = functools.partial(tuple.__new__, Wait)
_KEY = attrgetter("key")
_SHAPE = attrgetter("shape")
_IDENTITY = attrgetter("identity")
_CREATED = attrgetter("created")
_BYPASSED = attrgetter("bypassed")
_FLOOR = attrgetter("floor")
_NO_ENTRY = Inadmissible("", (object(),), (), (), "")  # matches no workload


class _Run(enum.Enum):
    """What a stretch of a queue is, for skipping (see ``_Queue``)."""

    SKIP = "skip"  # its entries held when the cycle began: skip it whole
    CHECK = "check"  # unchanged and not starving, entries did not hold: check each
    TRY = "try"  # no entry, changed or starving: try each


class _Queue:
    """One ClusterQueue's pending workloads in order, for one cycle, cut into runs
    for skipping the workloads whose earlier inadmissible entries still hold.

    The runs are found a column at a time with ``map`` and ``groupby`` (C loops): this
    is the one part of a cycle that looks at every pending workload, so it must cost
    little per workload. A ``SKIP`` run's entries held when the cycle began; until a
    preemption frees quota in the cohort, usage only grows, so they hold at their turn
    too and the run is skipped whole. After such a preemption, or in a ``CHECK`` run,
    each entry is checked at its own turn, as before."""

    __slots__ = ("cq", "ends", "entries", "items", "keys", "kinds", "loosened", "run")

    def __init__(self, cycle: _Cycle, cq: ClusterQueue, items: list[PendingWorkload]) -> None:
        self.cq, self.items, self.keys = cq, items, list(map(_KEY, items))
        self.loosened, self.run = cycle.loosened[cq.cohort or cq.name], 0
        earlier, n = cycle.snapshot.inadmissible, len(items)
        if not earlier or cq.strategy == QueueingStrategy.STRICT_FIFO:
            self.entries: list[Inadmissible] = []
            self.ends, self.kinds = [n], [_Run.TRY]
            return
        self.entries = entries = list(map(earlier.get, self.keys, repeat(_NO_ENTRY, n)))
        floors = list(map(id, map(_FLOOR, entries)))
        distinct = dict(zip(floors, entries, strict=True))
        ok_of = cycle.held_at_start
        # Share earlier floor objects first, so that entries marked in this cycle reuse
        # them (only floors of the cohort as it is: entries sharing a floor object then
        # share their config too).
        fresh = {f: (e, cycle.same_config(e, cq)) for f, e in distinct.items() if f not in ok_of}
        for entry, same in fresh.values():
            if same:
                cycle.intern(cq, entry.floor)
        # Per distinct floor: is its cohort as it was, and did it hold as the cycle
        # began? (Floors are shared by a cohort's queues: answers are kept per cycle.)
        now = cycle.usage_now(cq)
        for floor, (entry, same) in fresh.items():
            ok_of[floor] = (same, same and all(map(operator.ge, now, entry.floor)))
        columns = [
            map(ok_of.__getitem__, floors),
            map(operator.eq, map(_IDENTITY, items), map(_IDENTITY, entries)),
        ]
        # Starving workloads are tried: a column for each guard that some meet (one C
        # pass each to find out).
        limit, cutoff = cq.starvation.max_bypasses, cycle.starving.cutoff(cq)
        if limit > 0 and max(map(_BYPASSED, items), default=0) >= limit:
            columns.append(map(limit.__gt__, map(_BYPASSED, items)))
        if cutoff is not None and min(map(_CREATED, items), default=cutoff) <= cutoff:
            columns.append(map(cutoff.__lt__, map(_CREATED, items)))
        self.ends, self.kinds = [], []
        at = 0
        for tag, members in groupby(zip(*columns, strict=True)):
            at += len(list(members))
            self.ends.append(at)
            (same, held), static = tag[0], tag[1:]
            self.kinds.append(
                _Run.TRY if not (same and all(static)) else _Run.SKIP if held else _Run.CHECK
            )

    def run_at(self, at: int) -> tuple[int, _Run]:
        """The end and kind of the run holding index ``at`` (``at`` never goes back)."""
        ends, run = self.ends, self.run
        while ends[run] <= at:
            run += 1
        self.run = run
        return ends[run], self.kinds[run]

    def holding(self, cycle: _Cycle, at: int, end: int) -> int:
        """The end of the longest stretch from ``at`` (within a run, so the cohort is
        as it was) whose entries' floors hold now."""
        entries, i = self.entries, at
        while i < end and cycle.floor_holds(self.cq, entries[i].floor):
            i += 1
        return i


def _admission_rounds(cycle: _Cycle) -> None:
    """Phases 1 and 2: take candidates in order until every queue is done or blocked."""
    snapshot = cycle.snapshot
    ordered = dict(cycle.ordered)
    for wl in ordered.pop("", []):
        why = f"clusterqueue {wl.cluster_queue or '(none)'} of queue {wl.queue} does not exist"
        cycle.wait(wl, WaitReason.INADMISSIBLE, why, -1)
    queues_of = {
        name: _Queue(cycle, snapshot.cluster_queues[name], items) for name, items in ordered.items()
    }
    cycle.queues = queues_of
    cursor = dict.fromkeys(ordered, 0)
    # A head's rank depends on the head and on its own queue's usage only, so a heap
    # holds each live queue's current head; a queue's entry is replaced when its head
    # moves on or its usage changes (``current`` tells stale entries apart).
    Rank = tuple[int, Decimal, int, datetime, str]
    current: dict[str, Rank] = {}
    heap: list[tuple[Rank, str]] = []
    shares: dict[tuple[object, ...], Decimal] = {}
    inadmissible = cycle.inadmissible

    def refresh(name: str) -> None:
        if name in cycle.blocked:
            current.pop(name, None)
            return
        queue = queues_of[name]
        cq, at, n = queue.cq, cursor[name], len(queue.items)
        # Skip the workloads whose earlier inadmissible facts still hold (BestEffortFIFO
        # only): they keep waiting as they did, and are not reported again.
        # Equivalent workloads that waited in this cycle are not skipped here but at
        # their turn (``_try``): a preemption ranked before them may free quota.
        cohort = cq.cohort or cq.name
        while at < n:
            end, kind = queue.run_at(at)
            if kind is _Run.TRY:
                break
            if kind is not _Run.SKIP or cycle.loosened[cohort] != queue.loosened:
                end = queue.holding(cycle, at, end)
                if end == at:
                    break
            cycle.skipped[name].append((at, end))
            inadmissible.update(zip(queue.keys[at:end], queue.entries[at:end], strict=True))
            at = end
        cursor[name] = at
        if at >= n:
            current.pop(name, None)
            return
        wl = queue.items[at]
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
    """Phase 4: a ``Wait`` for each workload decided in this cycle that stays pending,
    and, where a ClusterQueue's starvation guard counts bypasses, for each skipped one
    that a later workload of its ClusterQueue was admitted past (its count moved).
    A skipped workload whose count did not move is not reported: it waits as before.
    Also tally what the waiting workloads of each ClusterQueue request.

    Cost is linear in the decided workloads, except the tally (one C-level count of
    shapes per queue)."""
    last_of = {name: max(at) for name, at in cycle.admitted_at.items()}
    counts_bypasses = {
        name: cq.starvation.max_bypasses > 0 for name, cq in cycle.snapshot.cluster_queues.items()
    }
    no_quota = WaitReason.NO_QUOTA
    waits: list[Wait] = []
    for wl, reason, why, hungry, index in cycle.waits.values():
        bypassed = wl.bypassed
        if (
            reason is no_quota
            and counts_bypasses.get(wl.cluster_queue, False)
            and 0 <= index < last_of.get(wl.cluster_queue, -1)
        ):
            bypassed += 1
        waits.append(_new_wait((wl.key, wl.cluster_queue, reason, why, bypassed, hungry)))
    for name, ranges in cycle.skipped.items():
        last = last_of.get(name, -1)
        if not counts_bypasses[name] or last <= 0:
            continue
        queue = cycle.queues[name]
        for start, end in ranges:
            for i in range(start, min(end, last)):
                wl, entry = queue.items[i], queue.entries[i]
                waits.append(_new_wait((wl.key, name, no_quota, entry.why, wl.bypassed + 1, False)))
    pending: Pending = {}
    admitted: dict[str, Counter[str]] = defaultdict(Counter)
    for wl in cycle.admitted_wls:
        admitted[wl.cluster_queue][wl.shape] += 1
    for name, items in cycle.ordered.items():
        shapes = list(map(_SHAPE, items))
        some = dict(zip(shapes, items, strict=True))
        tally = Counter(shapes)
        tally.subtract(admitted.get(name, {}))
        pending[name] = {s: Tally(some[s], n) for s, n in tally.items() if n > 0}
    return tuple(waits), pending


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
