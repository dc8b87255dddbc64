"""The ``TrainJob`` kind: distributed PyTorch training as one gang of nodes.

The spec follows Kubeflow Trainer v2's TrainJob (``trainer``: image, command, args, env,
workingDir, numNodes, resourcesPerNode, numProcPerNode) and the run environment follows
torchrun's, so a script that runs under ``torchrun`` runs here unchanged. Beyond
Trainer v2: an elastic size (``minNodes``..``maxNodes``), a failure policy by exit code
(Kubernetes' PodFailurePolicy), and a checkpoint directory the platform keeps across
restarts.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from cnai.core.meta import Condition, Resource, WireModel
from cnai.core.pods import EnvVar, PodPhase, ResourceRequirements

TRAINJOB_NAME_LABEL = "cnai.io/trainjob-name"
TRAINJOB_UID_LABEL = "cnai.io/trainjob-uid"
GENERATION_LABEL = "cnai.io/gang-generation"  # which start of the gang a pod belongs to
RANK_LABEL = "cnai.io/node-rank"
WORLD_ANNOTATION = "cnai.io/num-nodes"  # the gang's size when the pod was made


class Trainer(WireModel):
    """What every node of the gang runs, and how many nodes there are."""

    image: str = Field(default="", description="Container image (the Kubernetes engine runs it).")
    command: list[str] = Field(
        default_factory=list, description="Executable and its arguments, e.g. [python, train.py]."
    )
    args: list[str] = Field(default_factory=list, description="More arguments after command.")
    env: list[EnvVar] = Field(default_factory=list, description="Environment variables.")
    working_dir: str = Field(default="", description="Working directory (a local path).")
    num_nodes: int | None = Field(
        default=None, description="Nodes (pods) in the gang; 1 if neither this nor maxNodes."
    )
    min_nodes: int | None = Field(
        default=None,
        description="Elastic: the fewest nodes worth starting with. The job starts as soon as "
        "this many fit and grows towards maxNodes as capacity frees.",
    )
    max_nodes: int | None = Field(
        default=None, description="Elastic: the most nodes (same as numNodes; give one of them)."
    )
    num_proc_per_node: int = Field(
        default=1,
        description="Processes per node. Above 1, each pod starts them through torchrun.",
    )
    resources_per_node: ResourceRequirements = Field(
        default_factory=ResourceRequirements, description="Requests and limits of each node."
    )
    termination_grace_period_seconds: int = Field(
        default=30,
        description="Seconds a stopped node has after SIGTERM (to checkpoint) before SIGKILL.",
    )

    @property
    def most_nodes(self) -> int:
        return self.max_nodes or self.num_nodes or 1

    @property
    def fewest_nodes(self) -> int:
        return self.min_nodes or self.most_nodes


class FailureAction(StrEnum):
    """What a node's exit code does (Kubernetes PodFailurePolicy's actions)."""

    FAIL_JOB = "FailJob"  # a permanent error: the job fails at once, no retry
    IGNORE = "Ignore"  # restart the gang without counting against backoffLimit
    COUNT = "Count"  # restart the gang, counting against backoffLimit (the default)


class ExitCodeOperator(StrEnum):
    IN = "In"
    NOT_IN = "NotIn"


class OnExitCodes(WireModel):
    """Exit codes a rule matches."""

    operator: ExitCodeOperator = Field(description="In or NotIn.")
    values: list[int] = Field(description="Exit codes (at least one).")

    def matches(self, code: int) -> bool:
        return (code in self.values) == (self.operator is ExitCodeOperator.IN)


class FailureRule(WireModel):
    """One rule of the failure policy; the first rule matching a failed node applies."""

    action: FailureAction = Field(description="FailJob, Ignore or Count.")
    on_exit_codes: OnExitCodes = Field(description="Which exit codes the rule matches.")


class FailurePolicy(WireModel):
    """Rules by exit code; a failure no rule matches counts against backoffLimit."""

    rules: list[FailureRule] = Field(default_factory=list, description="Tried in order.")

    def action_for(self, code: int | None) -> FailureAction:
        for rule in self.rules:
            if code is not None and rule.on_exit_codes.matches(code):
                return rule.action
        return FailureAction.COUNT


class TrainJobSpec(WireModel):
    """What to train, where it queues, and how failures and time are handled."""

    trainer: Trainer = Field(description="What each node runs and how many nodes.")
    queue: str = Field(
        default="", description="LocalQueue to submit to; unset means the namespace's default."
    )
    priority_class_name: str = Field(
        default="", description="PriorityClass giving the job's priority (and for preemption)."
    )
    suspend: bool = Field(
        default=False,
        description="If true, the nodes get SIGTERM (time to checkpoint) and the job leaves "
        "the queue; set back to false, it queues again and resumes from its checkpoint.",
    )
    active_deadline_seconds: int | None = Field(
        default=None, description="Seconds the job may run, from when it last started."
    )
    backoff_limit: int = Field(
        default=3,
        description="Gang restarts after failures tolerated; one more fails the job. "
        "Preemptions, suspends and resizes are not failures.",
    )
    failure_policy: FailurePolicy = Field(
        default_factory=FailurePolicy,
        description="Which exit codes fail the job at once, restart it uncounted, or count.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None, description="Seconds after the job finished at which it is deleted."
    )
    run_group: str = Field(
        default="", description="Tracking run group of the job's run (default: Default)."
    )


class TrainJobPhase(StrEnum):
    """Lifecycle: Pending -> Running -> Succeeded | Failed, with Restarting between
    gangs and Suspended while suspended."""

    PENDING = "Pending"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self in (TrainJobPhase.SUCCEEDED, TrainJobPhase.FAILED)


class ConditionType(StrEnum):
    ADMITTED = "Admitted"
    SUSPENDED = "Suspended"
    COMPLETE = "Complete"
    FAILED = "Failed"


class ReplicaStatus(WireModel):
    """One node of the current gang."""

    rank: int = Field(description="Node rank (GROUP_RANK).")
    pod: str = Field(description="The pod running it.")
    phase: PodPhase = Field(default=PodPhase.PENDING, description="The pod's phase.")
    exit_code: int | None = Field(default=None, description="Its exit code once it ended.")
    reason: str = Field(default="", description="Why it ended, e.g. Error or OOMKilled.")


class TrainJobStatus(WireModel):
    """What the controller observed and decided."""

    phase: TrainJobPhase = Field(default=TrainJobPhase.PENDING, description="Lifecycle phase.")
    conditions: list[Condition] = Field(
        default_factory=list, description="Admitted, Suspended, Complete and Failed, with reasons."
    )
    num_nodes: int = Field(default=0, description="Nodes in the current gang (its world).")
    nodes_text: str = Field(default="", description="Current over wanted nodes, e.g. 1/2.")
    restarts: int = Field(
        default=0,
        description="Gang restarts, all causes: the current gang's TORCHELASTIC_RESTART_COUNT "
        "(and the number in its pods' names).",
    )
    failures: int = Field(default=0, description="Gang failures counted against backoffLimit.")
    replicas: list[ReplicaStatus] = Field(
        default_factory=list, description="The current gang's nodes."
    )
    start_time: datetime | None = Field(default=None, description="When the job last started.")
    completion_time: datetime | None = Field(default=None, description="When it succeeded.")
    run_id: str = Field(default="", description="The tracking run its nodes log to.")
    checkpoint_dir: str = Field(
        default="", description="Where its checkpoints are kept across restarts."
    )
    reason: str = Field(default="", description="Why it waits or restarts.")
    message: str = Field(default="", description="The same, in words.")
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status was computed for."
    )


class TrainJob(Resource):
    """Distributed training: a gang of nodes admitted together, restarted together."""

    KIND: ClassVar[str] = "TrainJob"
    PLURAL: ClassVar[str] = "trainjobs"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("tj",)

    spec: TrainJobSpec = Field(description="What to train.")
    status: TrainJobStatus = Field(default_factory=TrainJobStatus, description="What happened.")

    def condition(self, type: ConditionType) -> Condition | None:
        return next((c for c in self.status.conditions if c.type == type), None)
