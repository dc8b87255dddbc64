"""ClusterQueue usage after a cycle: what ``cnai get clusterqueues`` shows.

Per flavor and resource: nominal, borrowed and used; per resource: what pending
workloads request; and a compact text such as ``cpu 4/8 gpu 2/4 (borrowed gpu 1)``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from decimal import Decimal

from cnai.scheduling.admission.decisions import Admit, QueueUsage, ResourceLine, Wait
from cnai.scheduling.admission.quota import ZERO, Ledger
from cnai.scheduling.admission.reasons import amount
from cnai.scheduling.admission.snapshot import ClusterQueue, Snapshot


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


def summarize(
    snapshot: Snapshot, ledger: Ledger, admits: Sequence[Admit], waits: Sequence[Wait]
) -> Mapping[str, QueueUsage]:
    """Each ClusterQueue's usage and queue lengths once this cycle's decisions apply."""
    pending_wls = {w.key: w for w in snapshot.pending}
    waits_of: dict[str, list[Wait]] = defaultdict(list)
    for w in waits:
        waits_of[w.cluster_queue].append(w)
    admitted_of = Counter(w.cluster_queue for w in snapshot.admitted)
    admitted_of.update(a.cluster_queue for a in admits)
    out = {}
    for cq in snapshot.cluster_queues.values():
        mine = waits_of.get(cq.name, [])
        pending: dict[str, Decimal] = {}
        for w in mine:
            for ps in pending_wls[w.workload].pod_sets:
                for r, v in ps.requests.items():
                    pending[r] = pending.get(r, ZERO) + v * ps.count
        admitted = admitted_of[cq.name]
        lines = _lines(cq, ledger)
        out[cq.name] = QueueUsage(lines, pending, len(mine), admitted, usage_text(lines))
    return out
