"""Order: workloads within a queue, ClusterQueues within a cohort, and who is starving.

Within a ClusterQueue workloads go by priority, then first come first served (Kueue).
Between the ClusterQueues of a cohort the next candidate is, in order: a starving head;
the ClusterQueue whose dominant resource share (what it borrows over the cohort's pool,
divided by its fair-sharing weight) would be lowest after admitting it; the higher
priority; the older workload.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from cnai.scheduling.admission.quota import Ledger
from cnai.scheduling.admission.snapshot import (
    Amounts,
    ClusterQueue,
    FlavorResource,
    PendingWorkload,
    Snapshot,
)


def queue_key(wl: PendingWorkload) -> tuple[int, datetime, str]:
    return (-wl.priority, wl.created, wl.key)


def queues(snapshot: Snapshot) -> dict[str, list[PendingWorkload]]:
    """Pending workloads per ClusterQueue in queue order (unknown queues under "")."""
    out: dict[str, list[PendingWorkload]] = defaultdict(list)
    for wl in snapshot.pending:
        name = wl.cluster_queue if wl.cluster_queue in snapshot.cluster_queues else ""
        out[name].append(wl)
    for items in out.values():
        items.sort(key=queue_key)
    return dict(out)


def positions(snapshot: Snapshot) -> Mapping[str, int]:
    """Each pending workload's 1-based position in its LocalQueue."""
    by_queue: dict[tuple[str, str], list[PendingWorkload]] = defaultdict(list)
    for wl in snapshot.pending:
        namespace = wl.key.partition("/")[0]
        by_queue[(namespace, wl.queue)].append(wl)
    out = {}
    for items in by_queue.values():
        for i, wl in enumerate(sorted(items, key=queue_key), start=1):
            out[wl.key] = i
    return out


def starving(cq: ClusterQueue, wl: PendingWorkload, now: datetime) -> bool:
    """Has the workload waited past its ClusterQueue's starvation guard?"""
    guard = cq.starvation
    waited = (now - wl.created).total_seconds()
    return (guard.max_wait_seconds > 0 and waited >= guard.max_wait_seconds) or (
        guard.max_bypasses > 0 and wl.bypassed >= guard.max_bypasses
    )


def rough_request(cq: ClusterQueue, wl: PendingWorkload) -> Amounts:
    """The workload at its minimum size in each group's first flavor (for ranking)."""
    out: dict[FlavorResource, Decimal] = {}
    for ps in wl.pod_sets:
        for r, v in ps.requests.items():
            group = cq.group_of(r)
            if group is not None and v > 0:
                fr = (group.flavors[0], r)
                out[fr] = out.get(fr, Decimal(0)) + v * ps.least
    return out


def rank(
    snapshot: Snapshot, ledger: Ledger, cq: ClusterQueue, wl: PendingWorkload, hungry: bool
) -> tuple[int, Decimal, int, datetime, str]:
    """Sort key of a ClusterQueue's next candidate among all queues' candidates."""
    share = ledger.share(cq, rough_request(cq, wl))
    if not snapshot.fair_sharing:
        share = Decimal(1 if share > 0 else 0)  # non-borrowing first, as Kueue without it
    return (0 if hungry else 1, share, -wl.priority, wl.created, wl.key)
