"""A Workload's status after each kind of decision, as pure functions.

Legal transitions are those of :class:`~cnai.scheduling.api.WorkloadPhase`: a pending
Workload is admitted (with placements) or keeps waiting with a reason; an admitted one
may grow, shrink (by preemption, or to a lowered spec count) or be evicted (it keeps
its quota until its pods have stopped) and is then requeued; the job that owns it marks
it finished (see :func:`finished`). Each function returns a new status; the shell
writes it only if it differs from the stored one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from cnai.core.meta import Condition
from cnai.scheduling.admission import Admit, Preempt, Wait
from cnai.scheduling.api import (
    Admission,
    PodPlacement,
    PodSetAssignment,
    WorkloadConditionType,
    WorkloadPhase,
    WorkloadStatus,
)

C = WorkloadConditionType


def set_condition(
    status: WorkloadStatus, type: str, value: bool, reason: str, message: str, now: datetime
) -> None:
    """Set a condition; its transition time moves only when its status does."""
    text = "True" if value else "False"
    old = next((c for c in status.conditions if c.type == type), None)
    when = old.last_transition_time if old is not None and old.status == text else now
    status.conditions = [c for c in status.conditions if c.type != type]
    status.conditions.append(
        Condition(type=type, status=text, reason=reason, message=message, last_transition_time=when)
    )


def _clear_wait(status: WorkloadStatus) -> None:
    status.reason, status.message = "", ""


def admitted(
    status: WorkloadStatus,
    admit: Admit,
    placements: Mapping[str, Sequence[PodPlacement]],
    now: datetime,
) -> WorkloadStatus:
    """Quota reserved and pods placed: the job may start its pods."""
    out = status.model_copy(deep=True)
    out.phase = WorkloadPhase.ADMITTED
    out.admission = Admission(
        cluster_queue=admit.cluster_queue,
        pod_set_assignments=[
            PodSetAssignment(
                name=p.name,
                flavors=dict(p.flavors),
                count=p.count,
                resource_usage={r: str(v) for r, v in p.usage.items()},
                placements=list(placements.get(p.name, ())),
            )
            for p in admit.pod_sets
        ],
    )
    _clear_wait(out)
    out.eviction_deadline = None
    message = f"admitted by clusterqueue {admit.cluster_queue}"
    set_condition(out, C.QUOTA_RESERVED, True, "QuotaReserved", message, now)
    set_condition(out, C.ADMITTED, True, "Admitted", message, now)
    if any(c.type == C.EVICTED for c in out.conditions):
        set_condition(out, C.EVICTED, False, "Admitted", message, now)
        set_condition(out, C.PREEMPTED, False, "Admitted", message, now)
    return out


def _recount(a: PodSetAssignment, n: int) -> None:
    """Set a pod set's admitted count; the quota it holds scales with it (per pod)."""
    if a.count > 0:
        a.resource_usage = {r: str(Decimal(v) * n / a.count) for r, v in a.resource_usage.items()}
    a.count = n


def resized(
    status: WorkloadStatus, counts: Mapping[str, int], extra: Mapping[str, Sequence[PodPlacement]]
) -> WorkloadStatus:
    """An admitted elastic workload grown to ``counts``, with the new pods placed."""
    out = status.model_copy(deep=True)
    assert out.admission is not None
    for a in out.admission.pod_set_assignments:
        if a.name in counts:
            _recount(a, counts[a.name])
            a.placements = [*a.placements, *extra.get(a.name, ())]
    return out


def trimmed(
    status: WorkloadStatus, counts: Mapping[str, int], kept: Mapping[str, Sequence[PodPlacement]]
) -> WorkloadStatus:
    """An admitted workload whose spec asks for fewer pods than it holds (its job's
    parallelism was lowered) taken down to ``counts`` per pod set, keeping the ``kept``
    placements. As after a shrink by preemption, its job stops the surplus pods, whose
    quota is held (see :mod:`.snapshots`) until they have stopped; no condition is set,
    since nothing was taken from it."""
    out = status.model_copy(deep=True)
    assert out.admission is not None
    for a in out.admission.pod_set_assignments:
        n = counts.get(a.name)
        if n is None or n >= a.count:
            continue
        _recount(a, n)
        a.placements = list(kept.get(a.name, a.placements[:n]))[:n]
    return out


def trim_text(status: WorkloadStatus) -> str:
    assert status.admission is not None
    total = sum(a.count for a in status.admission.pod_set_assignments)
    return f"Resized to {total} pods: its spec asks for fewer; the surplus pods are stopped"


def waiting(status: WorkloadStatus, wait: Wait) -> WorkloadStatus:
    """Still pending, and why."""
    out = status.model_copy(deep=True)
    out.reason, out.message = wait.reason.value, wait.message
    out.bypassed = wait.bypassed
    return out


def unplaceable(status: WorkloadStatus, message: str) -> WorkloadStatus:
    """Its quota is free but no node has room for its pods."""
    out = status.model_copy(deep=True)
    out.reason, out.message = "NoNodeFits", message
    return out


def evicted(status: WorkloadStatus, preempt: Preempt, now: datetime) -> WorkloadStatus:
    """Preempted: its pods are stopped; it holds its quota until they have."""
    out = status.model_copy(deep=True)
    out.phase = WorkloadPhase.EVICTING
    out.eviction_deadline = preempt.kill_after
    out.reason = "Preempted"
    out.message = preempt.message
    set_condition(out, C.EVICTED, True, "Preempted", preempt.message, now)
    set_condition(out, C.PREEMPTED, True, preempt.reason.value, preempt.message, now)
    return out


def shrink_text(preempt: Preempt) -> str:
    total = sum((preempt.shrink_to or {}).values())
    return f"Shrunk by preemption to {total} pods for {preempt.preemptor}"


def shrunk(
    status: WorkloadStatus,
    preempt: Preempt,
    kept: Mapping[str, Sequence[PodPlacement]],
    now: datetime,
) -> WorkloadStatus:
    """An elastic victim taken down to ``preempt.shrink_to`` pods per pod set, keeping the
    ``kept`` placements. It stays admitted; its job stops the surplus pods, whose quota
    is held (see :mod:`.snapshots`) until they have stopped."""
    out = status.model_copy(deep=True)
    assert out.admission is not None
    assert preempt.shrink_to is not None
    for a in out.admission.pod_set_assignments:
        n = preempt.shrink_to.get(a.name)
        if n is None or n >= a.count:
            continue
        _recount(a, n)
        a.placements = list(kept.get(a.name, a.placements[:n]))[:n]
    message = f"{shrink_text(preempt)}: {preempt.message}"
    set_condition(out, C.SHRUNK, True, preempt.reason.value, message, now)
    return out


def requeued(status: WorkloadStatus, now: datetime) -> WorkloadStatus:
    """An evicted workload whose pods have all stopped: back in its queue."""
    out = status.model_copy(deep=True)
    out.phase = WorkloadPhase.PENDING
    out.admission = None
    out.eviction_deadline = None
    out.reason = "Requeued"
    out.message = f"requeued after eviction: {status.message}" if status.message else "requeued"
    set_condition(out, C.QUOTA_RESERVED, False, "Evicted", out.message, now)
    set_condition(out, C.ADMITTED, False, "Evicted", out.message, now)
    return out


def finished(status: WorkloadStatus, message: str, now: datetime) -> WorkloadStatus:
    """Its job is done: the quota it held is free for others."""
    out = status.model_copy(deep=True)
    out.phase = WorkloadPhase.FINISHED
    _clear_wait(out)
    set_condition(out, C.FINISHED, True, "Finished", message, now)
    return out
