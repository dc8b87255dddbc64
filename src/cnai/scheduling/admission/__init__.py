"""The scheduler's pure admission core: ``schedule(snapshot, now) -> Decisions``.

Queues, quota with cohort borrowing and lending, gang (all-or-nothing) and partial
admission, preemption, fair sharing and anti-starvation, as pure functions over a
:class:`Snapshot` (DESIGN.md principle 3). No I/O: the scheduler's shell builds the
snapshot from the store and applies the decisions; the simulator calls the same code.
"""

from cnai.scheduling.admission.decisions import (
    Admit,
    Decisions,
    Preempt,
    QueueUsage,
    Resize,
    ResourceLine,
    Wait,
    WaitReason,
)
from cnai.scheduling.admission.flavors import PodSetFit
from cnai.scheduling.admission.preemption import PreemptReason
from cnai.scheduling.admission.scheduler import schedule
from cnai.scheduling.admission.snapshot import (
    AdmittedPodSet,
    AdmittedWorkload,
    ClusterQueue,
    FlavorResource,
    Inadmissible,
    PendingWorkload,
    PodSet,
    Preemption,
    QueueingStrategy,
    Quota,
    Reclaim,
    ResourceGroup,
    Snapshot,
    StarvationGuard,
    WithinQueue,
)

__all__ = [
    "Admit",
    "AdmittedPodSet",
    "AdmittedWorkload",
    "ClusterQueue",
    "Decisions",
    "FlavorResource",
    "Inadmissible",
    "PendingWorkload",
    "PodSet",
    "PodSetFit",
    "Preempt",
    "PreemptReason",
    "Preemption",
    "QueueUsage",
    "QueueingStrategy",
    "Quota",
    "Reclaim",
    "Resize",
    "ResourceGroup",
    "ResourceLine",
    "Snapshot",
    "StarvationGuard",
    "Wait",
    "WaitReason",
    "WithinQueue",
    "schedule",
]
