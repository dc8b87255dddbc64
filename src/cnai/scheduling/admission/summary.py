"""ClusterQueue usage after a cycle: what ``cnai get clusterqueues`` shows.

Per flavor and resource: nominal, borrowed and used; per resource: what pending
workloads request; and a compact text such as ``cpu 4/8 gpu 2/4 (borrowed gpu 1)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from cnai.scheduling.admission.decisions import Admit, QueueUsage, ResourceLine
from cnai.scheduling.admission.quota import ZERO, Ledger
from cnai.scheduling.admission.reasons import amount
from cnai.scheduling.admission.snapshot import ClusterQueue, PendingWorkload, Snapshot


def _lines(cq: ClusterQueue, ledger: Ledger) -> tuple[ResourceLine, ...]:
    out = []
    for group in cq.groups:
        for flavor in group.flavors:
            for r in group.resources:
                quota = cq.quotas.get((flavor, r))
                nominal = quota.nominal if quota else ZERO
                used = ledger.used(cq.name, (flavor, r))
                out.append(ResourceLine(flavor, r, nominal, max(ZERO, used - nominal), used))
    return tuple(out)


def usage_text(lines: Sequence[ResourceLine]) -> str:
    """``cpu 4/8 gpu 2/4 (borrowed gpu 1)``: used over nominal per resource, all flavors."""
    totals: dict[str, list[Decimal]] = {}
    for line in lines:
        t = totals.setdefault(line.resource, [ZERO, ZERO, ZERO])
        t[0] += line.used
        t[1] += line.nominal
        t[2] += line.borrowed
    parts = [f"{r} {amount(r, u)}/{amount(r, n)}" for r, (u, n, _) in totals.items()]
    borrowed = [f"{r} {amount(r, b)}" for r, (_, _, b) in totals.items() if b > 0]
    text = " ".join(parts)
    return f"{text} (borrowed {' '.join(borrowed)})" if borrowed else text


@dataclass(slots=True)
class Tally:
    """Waiting workloads of one shape in a ClusterQueue: one of them, and how many."""

    workload: PendingWorkload
    count: int = 1


# Per ClusterQueue, the waiting workloads grouped by shape (``PendingWorkload.shape``):
# workloads of one shape request the same, so each group is summed once.
Pending = dict[str, dict[str, Tally]]


def summarize(
    snapshot: Snapshot, ledger: Ledger, admits: Sequence[Admit], waiting: Pending
) -> Mapping[str, QueueUsage]:
    """Each ClusterQueue's usage and queue lengths once this cycle's decisions apply."""
    admitted_of = Counter(w.cluster_queue for w in snapshot.admitted)
    admitted_of.update(a.cluster_queue for a in admits)
    out = {}
    for cq in snapshot.cluster_queues.values():
        pending: dict[str, Decimal] = {}
        count = 0
        for tally in waiting.get(cq.name, {}).values():
            count += tally.count
            for r, v in tally.workload.total_requests.items():
                pending[r] = pending.get(r, ZERO) + v * tally.count
        lines = _lines(cq, ledger)
        out[cq.name] = QueueUsage(lines, pending, count, admitted_of[cq.name], usage_text(lines))
    return out
