"""What an admitted (or pending, or evicted) Workload allows its job to do now.

Every job kind asks the same questions of its Workload: may I run pods, how many, on
which slots of the placement, and which of my pods hold no slot any more (the Workload
was shrunk). The answers are here, pure, so the kinds agree with the scheduler (the
surplus rule is the scheduler's own, :func:`cnai.scheduling.snapshots.surplus_pods`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from cnai.core.kubelet import GPU_ANNOTATION
from cnai.core.pods import Pod
from cnai.scheduling.api import PodPlacement, Workload, WorkloadPhase
from cnai.scheduling.snapshots import surplus_pods

QUEUED = "Queued"
PREEMPTED = "Preempted"


@dataclass(frozen=True)
class Gate:
    """What a job's Workload allows: pods up to ``count`` while admitted (None: no
    limit); none while pending; stop them all while evicted. ``surplus``: active pods to
    stop because the Workload was shrunk, by preemption or to a lowered count (they
    hold no slot of its placement). ``reason`` and ``message`` say why the job waits."""

    admitted: bool = True
    count: int | None = None
    evicted: bool = False
    reason: str = ""
    message: str = ""
    surplus: tuple[str, ...] = ()


OPEN = Gate()  # no scheduler: as many pods as the job wants (pure decision tests)


def admission_gate(wl: Workload | None, active: Iterable[Pod] = ()) -> Gate:
    """What the Workload's status allows its job to do now, given the job's ``active``
    pods (those beyond a shrunk Workload's placement are to be stopped)."""
    if wl is None:
        return Gate(False, 0, reason=QUEUED, message="waiting for the scheduler")
    status = wl.status
    if status.phase is WorkloadPhase.EVICTING:
        message = f"preempted: {status.message}; its pods are stopping, then it is requeued"
        return Gate(False, 0, evicted=True, reason=PREEMPTED, message=message)
    if status.phase is WorkloadPhase.ADMITTED and status.admission is not None:
        count = sum(a.count for a in status.admission.pod_set_assignments)
        return Gate(True, count, surplus=surplus(wl, active))
    message = status.message or f"waiting for the scheduler in queue {wl.spec.queue_name}"
    return Gate(False, 0, reason=status.reason or QUEUED, message=message)


def _slot(pod: Pod) -> tuple[str, tuple[int, ...]]:
    text = pod.metadata.annotations.get(GPU_ANNOTATION, "")
    return pod.spec.node_name, tuple(int(i) for i in text.split(",") if i.strip().isdigit())


def surplus(wl: Workload, active: Iterable[Pod]) -> tuple[str, ...]:
    """Names of active pods that hold no slot of the admitted Workload's placement,
    highest-numbered first (a shrunk Workload keeps its oldest pods' slots).

    The scheduler's own rule, so the Job deletes exactly the pods the scheduler counts as
    still stopping."""
    return tuple(reversed([p.metadata.name for p in surplus_pods(wl, active)]))


def free_slots(wl: Workload | None, active: Iterable[Pod]) -> list[PodPlacement]:
    """The placements of the admitted Workload that no active pod holds, in order."""
    if wl is None or wl.status.admission is None:
        return []
    held = Counter(_slot(p) for p in active)
    out = []
    for a in wl.status.admission.pod_set_assignments:
        for p in a.placements:
            key = (p.node_name, tuple(p.gpus))
            if held[key] > 0:
                held[key] -= 1
            else:
                out.append(p)
    return out
