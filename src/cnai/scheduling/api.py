"""The scheduling kinds, shaped after Kueue's v1beta1 API in cnai's conventions.

ResourceFlavor, ClusterQueue and PriorityClass are cluster-scoped; LocalQueue and
Workload are namespaced. A job controller submits a Workload (the gang of pods it needs)
to a LocalQueue; the scheduler admits it against its ClusterQueue's quota (borrowing
from the cohort) and writes the decision in ``status``. Quantities are Kubernetes
quantities (``500m``, ``16Gi``, ``4``) checked by the kinds' validators, so every
rejection names its field path.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from cnai.core.meta import Condition, Resource, WireModel

Quantity = str | int | float

# Set on every pod a job creates for an admitted Workload, naming that Workload: the
# scheduler counts such pods in the Workload's placement, not as standalone pods, and
# requeues an evicted Workload once none of them is left.
WORKLOAD_ANNOTATION = "cnai.io/workload"


class QueueingStrategy(StrEnum):
    """How a ClusterQueue treats a head workload that does not fit.

    StrictFIFO: the head blocks the queue until it is admitted. BestEffortFIFO: the next
    workloads may be tried (until the head starves, see ``starvationGuard``).
    """

    STRICT_FIFO = "StrictFIFO"
    BEST_EFFORT_FIFO = "BestEffortFIFO"


class WithinClusterQueuePolicy(StrEnum):
    """Which workloads of its own ClusterQueue a pending workload may preempt."""

    NEVER = "Never"
    LOWER_PRIORITY = "LowerPriority"
    LOWER_OR_NEWER_EQUAL_PRIORITY = "LowerOrNewerEqualPriority"


class ReclaimWithinCohortPolicy(StrEnum):
    """Which borrowing workloads of other ClusterQueues a workload may preempt to
    reclaim its nominal quota."""

    NEVER = "Never"
    LOWER_PRIORITY = "LowerPriority"
    ANY = "Any"


class BorrowWithinCohortPolicy(StrEnum):
    """Whether a workload may preempt in the cohort while it borrows itself."""

    NEVER = "Never"
    LOWER_PRIORITY = "LowerPriority"


class PreemptionPolicyName(StrEnum):
    """A PriorityClass's preemption policy (Kubernetes' names)."""

    PREEMPT_LOWER_PRIORITY = "PreemptLowerPriority"
    NEVER = "Never"


# ResourceFlavor


class ResourceFlavorSpec(WireModel):
    """The nodes a flavor stands for."""

    node_labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels of the nodes of this flavor (e.g. gpu.model: a100), for placement.",
    )


class ResourceFlavor(Resource):
    """A kind of machine (e.g. a GPU model) that quota is given in."""

    KIND: ClassVar[str] = "ResourceFlavor"
    PLURAL: ClassVar[str] = "resourceflavors"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("rf", "flavor", "flavors")
    NAMESPACED: ClassVar[bool] = False

    spec: ResourceFlavorSpec = Field(
        default_factory=ResourceFlavorSpec, description="The nodes this flavor selects."
    )


# ClusterQueue


class ResourceQuota(WireModel):
    """Quota of one resource in one flavor."""

    name: str = Field(description="Resource name: cpu, memory, gpu or any named resource.")
    nominal_quota: Quantity = Field(
        default=0, description="Quota this ClusterQueue is guaranteed (a quantity)."
    )
    borrowing_limit: Quantity | None = Field(
        default=None,
        description="Most it may borrow from its cohort beyond nominal; unset means unlimited.",
    )
    lending_limit: Quantity | None = Field(
        default=None,
        description="Most of its unused nominal quota it lends to its cohort; unset means all.",
    )


class FlavorQuotas(WireModel):
    """The quotas of one flavor in a resource group."""

    name: str = Field(description="Name of a ResourceFlavor.")
    resources: list[ResourceQuota] = Field(
        default_factory=list, description="Quota per covered resource."
    )


class ResourceGroup(WireModel):
    """Resources that are assigned the same flavor, and the flavors tried in order."""

    covered_resources: list[str] = Field(
        default_factory=list, description="Resources this group gives quota for."
    )
    flavors: list[FlavorQuotas] = Field(
        default_factory=list,
        description="Flavors in order of preference: the first with room wins.",
    )


class BorrowWithinCohort(WireModel):
    """Preemption in the cohort while borrowing."""

    policy: BorrowWithinCohortPolicy = Field(
        default=BorrowWithinCohortPolicy.NEVER, description="Never or LowerPriority."
    )
    max_priority_threshold: int | None = Field(
        default=None, description="Only workloads at or below this priority may be preempted."
    )


class ClusterQueuePreemption(WireModel):
    """Which workloads a pending workload of this ClusterQueue may preempt."""

    within_cluster_queue: WithinClusterQueuePolicy = Field(
        default=WithinClusterQueuePolicy.NEVER,
        description="Never, LowerPriority or LowerOrNewerEqualPriority, in this ClusterQueue.",
    )
    reclaim_within_cohort: ReclaimWithinCohortPolicy = Field(
        default=ReclaimWithinCohortPolicy.NEVER,
        description="Never, LowerPriority or Any: borrowing workloads of other ClusterQueues.",
    )
    borrow_within_cohort: BorrowWithinCohort = Field(
        default_factory=BorrowWithinCohort,
        description="Whether preemption may also make room for borrowing.",
    )


class FairSharing(WireModel):
    """This ClusterQueue's share of the cohort's borrowable capacity."""

    weight: Quantity = Field(
        default=1, description="Weight in dominant-resource-share ordering (0 borrows last)."
    )


class StarvationGuard(WireModel):
    """When a waiting head workload stops letting later workloads pass it."""

    max_wait_seconds: int = Field(
        default=900, description="Seconds a head may wait before capacity is held for it (0: off)."
    )
    max_bypasses: int = Field(
        default=10, description="Times later workloads may pass a head before it is (0: off)."
    )


class ClusterQueueSpec(WireModel):
    """Quota, cohort and policies of a ClusterQueue."""

    cohort: str = Field(default="", description="Cohort whose members lend each other quota.")
    resource_groups: list[ResourceGroup] = Field(
        default_factory=list, description="Quota per flavor and resource."
    )
    queueing_strategy: QueueingStrategy = Field(
        default=QueueingStrategy.BEST_EFFORT_FIFO, description="StrictFIFO or BestEffortFIFO."
    )
    preemption: ClusterQueuePreemption = Field(
        default_factory=ClusterQueuePreemption, description="Preemption policies."
    )
    fair_sharing: FairSharing = Field(
        default_factory=FairSharing, description="Fair-sharing weight in the cohort."
    )
    starvation_guard: StarvationGuard = Field(
        default_factory=StarvationGuard,
        description="Anti-starvation thresholds for BestEffortFIFO.",
    )


class ResourceUsage(WireModel):
    """Quota and usage of one resource in one flavor."""

    name: str = Field(description="Resource name.")
    nominal: str = Field(default="0", description="Nominal quota.")
    borrowed: str = Field(default="0", description="Used beyond nominal, borrowed from the cohort.")
    used: str = Field(default="0", description="Used by admitted workloads.")
    pending: str = Field(default="0", description="Requested by pending workloads.")


class FlavorUsage(WireModel):
    """Usage of the resources of one flavor."""

    name: str = Field(description="Name of the ResourceFlavor.")
    resources: list[ResourceUsage] = Field(default_factory=list, description="Per resource.")


class ClusterQueueStatus(WireModel):
    """What the scheduler observed about a ClusterQueue."""

    flavors_usage: list[FlavorUsage] = Field(
        default_factory=list, description="Nominal, borrowed, used and pending per resource."
    )
    usage_text: str = Field(
        default="", description="Used/nominal in short, e.g. cpu 4/8 gpu 2/4 (borrowed gpu 1)."
    )
    pending_workloads: int = Field(default=0, description="Workloads waiting for admission.")
    admitted_workloads: int = Field(default=0, description="Workloads holding quota.")
    conditions: list[Condition] = Field(default_factory=list, description="Active and others.")


class ClusterQueue(Resource):
    """A pool of quota, shared with a cohort, that LocalQueues submit to."""

    KIND: ClassVar[str] = "ClusterQueue"
    PLURAL: ClassVar[str] = "clusterqueues"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("cq",)
    NAMESPACED: ClassVar[bool] = False

    spec: ClusterQueueSpec = Field(
        default_factory=ClusterQueueSpec, description="Quota and policy."
    )
    status: ClusterQueueStatus = Field(
        default_factory=ClusterQueueStatus, description="Usage and queue lengths."
    )


# LocalQueue


class LocalQueueSpec(WireModel):
    """The ClusterQueue a namespace's queue submits to."""

    cluster_queue: str = Field(default="", description="Name of the ClusterQueue (required).")


class LocalQueueStatus(WireModel):
    """What the scheduler observed about a LocalQueue."""

    pending_workloads: int = Field(default=0, description="Workloads waiting in this queue.")
    admitted_workloads: int = Field(default=0, description="Admitted workloads of this queue.")
    conditions: list[Condition] = Field(default_factory=list, description="Active and others.")


class LocalQueue(Resource):
    """A namespace's entry point to a ClusterQueue; jobs name it in ``spec.queue``."""

    KIND: ClassVar[str] = "LocalQueue"
    PLURAL: ClassVar[str] = "localqueues"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("lq", "queue", "queues")

    spec: LocalQueueSpec = Field(default_factory=LocalQueueSpec, description="Target queue.")
    status: LocalQueueStatus = Field(default_factory=LocalQueueStatus, description="Queue lengths.")


# PriorityClass (top-level fields, as Kubernetes scheduling.k8s.io/v1 has them)


class PriorityClass(Resource):
    """A named priority; workloads name it in ``spec.priorityClassName``."""

    KIND: ClassVar[str] = "PriorityClass"
    PLURAL: ClassVar[str] = "priorityclasses"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("pc",)
    NAMESPACED: ClassVar[bool] = False

    value: int = Field(default=0, description="Priority: higher is admitted and kept first.")
    global_default: bool = Field(
        default=False, description="If true, workloads without a class get this priority."
    )
    description: str = Field(default="", description="What the class is for.")
    preemption_policy: PreemptionPolicyName = Field(
        default=PreemptionPolicyName.PREEMPT_LOWER_PRIORITY,
        description="PreemptLowerPriority, or Never: its workloads never preempt others.",
    )


# Workload


class PodSet(WireModel):
    """A group of identical pods admitted all or nothing."""

    name: str = Field(default="main", description="Name, unique in the workload.")
    count: int = Field(default=1, description="Pods wanted (>= 1).")
    min_count: int | None = Field(
        default=None,
        description="Fewest pods worth starting (partial admission); unset means count.",
    )
    requests: dict[str, Quantity] = Field(
        default_factory=dict, description="Per-pod requests: cpu, memory, gpu or named resources."
    )


class WorkloadSpec(WireModel):
    """The gang of pods a job needs and the queue it waits in."""

    queue_name: str = Field(default="", description="LocalQueue in the workload's namespace.")
    priority_class_name: str = Field(default="", description="PriorityClass name.")
    priority: int | None = Field(
        default=None, description="Priority resolved from the class (set by the scheduler)."
    )
    pod_sets: list[PodSet] = Field(default_factory=list, description="Pod groups (at least one).")


class PodPlacement(WireModel):
    """Where one admitted pod runs: its node and, if it asked for GPUs, which devices."""

    node_name: str = Field(description="Node the pod is bound to.")
    gpus: list[int] = Field(default_factory=list, description="GPU device indices on the node.")


class PodSetAssignment(WireModel):
    """How many pods of a pod set were admitted, in which flavors, and where they run."""

    name: str = Field(description="Pod set name.")
    flavors: dict[str, str] = Field(default_factory=dict, description="Flavor per resource.")
    count: int = Field(default=0, description="Pods admitted.")
    resource_usage: dict[str, str] = Field(
        default_factory=dict, description="Total quota held per resource."
    )
    placements: list[PodPlacement] = Field(
        default_factory=list,
        description="Node and GPUs of each admitted pod (one entry per pod, chosen by placement).",
    )


class Admission(WireModel):
    """Where a workload was admitted."""

    cluster_queue: str = Field(description="ClusterQueue whose quota it holds.")
    pod_set_assignments: list[PodSetAssignment] = Field(
        default_factory=list, description="Per pod set."
    )


class WorkloadConditionType(StrEnum):
    """Condition types of a Workload (Kueue's names)."""

    QUOTA_RESERVED = "QuotaReserved"
    ADMITTED = "Admitted"
    EVICTED = "Evicted"
    PREEMPTED = "Preempted"
    SHRUNK = "Shrunk"  # an elastic Workload taken down toward minCount by preemption
    FINISHED = "Finished"


class WorkloadPhase(StrEnum):
    """Workload lifecycle; Finished is terminal.

    Legal transitions: Pending -> Admitted | Finished; Admitted -> Evicting | Finished;
    Evicting -> Pending (requeued once its pods stopped) | Finished.
    """

    PENDING = "Pending"
    ADMITTED = "Admitted"
    EVICTING = "Evicting"
    FINISHED = "Finished"

    @property
    def terminal(self) -> bool:
        return self is WorkloadPhase.FINISHED


class WorkloadStatus(WireModel):
    """The scheduler's decision about a workload and why it waits."""

    phase: WorkloadPhase = Field(default=WorkloadPhase.PENDING, description="Lifecycle phase.")
    conditions: list[Condition] = Field(
        default_factory=list, description="QuotaReserved, Admitted, Evicted, Preempted, Finished."
    )
    admission: Admission | None = Field(default=None, description="Set once admitted.")
    reason: str = Field(default="", description="CamelCase reason it waits, e.g. NoQuota.")
    message: str = Field(
        default="",
        description="Why it waits, e.g. needs 4 gpu in flavor a100, cohort has 2 free; ...",
    )
    bypassed: int = Field(
        default=0,
        description=(
            "Times later workloads were admitted past it; counted where its ClusterQueue"
            " sets starvationGuard.maxBypasses."
        ),
    )
    eviction_deadline: datetime | None = Field(
        default=None, description="When an evicted workload's pods are killed (SIGKILL)."
    )


class Workload(Resource):
    """The unit of admission: a gang of pod sets waiting in a queue (created by jobs)."""

    KIND: ClassVar[str] = "Workload"
    PLURAL: ClassVar[str] = "workloads"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("wl",)

    spec: WorkloadSpec = Field(default_factory=WorkloadSpec, description="Pods and queue.")
    status: WorkloadStatus = Field(default_factory=WorkloadStatus, description="Admission.")
