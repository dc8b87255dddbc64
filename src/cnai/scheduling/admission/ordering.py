"""Order: workloads within a queue, ClusterQueues within a cohort, and who is starving.

Within a ClusterQueue workloads go by priority, then first come first served (Kueue).
Between the ClusterQueues of a cohort the next candidate is, in order: a starving head;
the ClusterQueue whose dominant resource share (what it borrows over the cohort's pool,
divided by its fair-sharing weight) would be lowest after admitting it; the higher
priority; the older workload.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from operator import attrgetter

from cnai.scheduling.admission.quota import Ledger
from cnai.scheduling.admission.snapshot import (
    Amounts,
    ClusterQueue,
    FlavorResource,
    PendingWorkload,
    Snapshot,
)

_ORDER = attrgetter("order")  # PendingWorkload.order: priority, then first come


def queues(snapshot: Snapshot) -> dict[str, list[PendingWorkload]]:
    """Pending workloads per ClusterQueue in queue order (unknown queues under "")."""
    by_name: dict[str, list[PendingWorkload]] = defaultdict(list)
    for wl in snapshot.pending:
        by_name[wl.cluster_queue].append(wl)
    out: dict[str, list[PendingWorkload]] = {}
    unknown: list[PendingWorkload] = []
    for name, items in by_name.items():
        if name in snapshot.cluster_queues:
            out[name] = items
        else:
            unknown.extend(items)
    if unknown:
        out[""] = unknown
    for items in out.values():
        items.sort(key=_ORDER)
    return out


class Starvation:
    """Has a workload waited past its ClusterQueue's starvation guard (time waited, or
    times bypassed)? For one instant, with each ClusterQueue's cut-off computed once."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._cutoff: dict[str, datetime | None] = {}

    def __call__(self, cq: ClusterQueue, wl: PendingWorkload) -> bool:
        guard = cq.starvation
        if guard.max_bypasses > 0 and wl.bypassed >= guard.max_bypasses:
            return True
        cutoff = self.cutoff(cq)
        return cutoff is not None and wl.created <= cutoff

    def cutoff(self, cq: ClusterQueue) -> datetime | None:
        """Workloads created at or before this have waited too long (None: no limit)."""
        try:
            return self._cutoff[cq.name]
        except KeyError:
            wait = cq.starvation.max_wait_seconds
            cutoff = self.now - timedelta(seconds=wait) if wait > 0 else None
            self._cutoff[cq.name] = cutoff
            return cutoff


def rough_request(cq: ClusterQueue, wl: PendingWorkload) -> Amounts:
    """The workload at its minimum size in each group's first flavor (for ranking)."""
    out: dict[FlavorResource, Decimal] = {}
    for r, v in wl.least_requests.items():
        group = cq.group_of(r)
        if group is not None:
            out[(group.flavors[0], r)] = v
    return out


def rank(
    snapshot: Snapshot,
    ledger: Ledger,
    cq: ClusterQueue,
    wl: PendingWorkload,
    hungry: bool,
    memo: dict[tuple[object, ...], Decimal],
) -> tuple[int, Decimal, int, datetime, str]:
    """Sort key of a ClusterQueue's next candidate among all queues' candidates.

    ``memo`` (one per ledger) caches shares: a share depends on the queue's usage,
    which ``ledger.changes`` versions, and on the workload's pod sets only."""
    at = (cq.name, ledger.changes[cq.name], wl.shape)
    share = memo.get(at)
    if share is None:
        share = memo[at] = ledger.share(cq, rough_request(cq, wl))
    if not snapshot.fair_sharing:
        share = Decimal(1 if share > 0 else 0)  # non-borrowing first, as Kueue without it
    return (0 if hungry else 1, share, -wl.priority, wl.created, wl.key)
