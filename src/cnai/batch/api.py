"""The batch kinds: ``Job``, shaped after Kubernetes batch/v1 Job (NonIndexed).

A Job runs pods from its template until ``completions`` of them have succeeded, at most
``parallelism`` at a time, and gives up after ``backoffLimit`` failures or
``activeDeadlineSeconds``. Everything the controller owns lives in ``status``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from pydantic import Field

from cnai.core.meta import Condition, Resource, WireModel
from cnai.core.pods import PodSpec

# Labels the controller puts on every pod it creates; the uid label is how it finds them.
JOB_NAME_LABEL = "cnai.io/job-name"
JOB_UID_LABEL = "cnai.io/job-uid"
RESERVED_LABELS = (JOB_NAME_LABEL, JOB_UID_LABEL)


class JobPhase(StrEnum):
    """Job lifecycle; Succeeded and Failed are terminal.

    Legal transitions:
    Pending -> Running | Suspended | Succeeded | Failed;
    Running -> Suspended | Succeeded | Failed;
    Suspended -> Pending (resumed).
    A job created with ``suspend: true`` starts in Suspended.
    """

    PENDING = "Pending"
    RUNNING = "Running"
    SUSPENDED = "Suspended"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self in (JobPhase.SUCCEEDED, JobPhase.FAILED)


class ConditionType(StrEnum):
    """The condition types a Job reports (Kubernetes' names)."""

    COMPLETE = "Complete"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class Reason(StrEnum):
    """Condition reasons, which are also the reasons of the matching Events."""

    COMPLETED = "Completed"
    BACKOFF_LIMIT_EXCEEDED = "BackoffLimitExceeded"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    JOB_SUSPENDED = "JobSuspended"
    JOB_RESUMED = "JobResumed"


class PodTemplateMeta(WireModel):
    """The metadata a pod template may set; the controller adds its own labels."""

    labels: dict[str, str] = Field(
        default_factory=dict, description="Labels copied onto every pod of the job."
    )
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Annotations copied onto every pod of the job."
    )


class PodTemplate(WireModel):
    """The pod every attempt of the job runs."""

    metadata: PodTemplateMeta = Field(
        default_factory=PodTemplateMeta, description="Labels and annotations of the pods."
    )
    spec: PodSpec = Field(default_factory=PodSpec, description="What each pod runs.")


class JobSpec(WireModel):
    """What the user wants run, how many times, and for how long at most."""

    template: PodTemplate = Field(description="The pod to run; restartPolicy must be Never.")
    parallelism: int = Field(default=1, description="Most pods running at once (>= 0).")
    completions: int = Field(
        default=1, description="Pods that must succeed for the job to be complete (>= 1)."
    )
    backoff_limit: int = Field(
        default=6, description="Failed pods tolerated; one more fails the job (>= 0)."
    )
    active_deadline_seconds: int | None = Field(
        default=None,
        description="Seconds the job may run, counted from status.startTime, before it fails.",
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        description="Seconds after the job finished at which it is deleted, with its pods.",
    )
    suspend: bool = Field(
        default=False, description="If true, running pods are stopped and none are started."
    )
    queue: str = Field(
        default="",
        description="LocalQueue to submit the job to; unset means the namespace's queue default.",
    )
    priority_class_name: str = Field(
        default="",
        description="PriorityClass giving the job's priority in its queue (and for preemption).",
    )
    min_parallelism: int | None = Field(
        default=None,
        description=(
            "Fewest pods worth starting (Kueue's partial admission): the job is admitted at "
            "the largest count from this up to parallelism that fits; unset means parallelism."
        ),
    )


class JobStatus(WireModel):
    """What the job controller observed and decided."""

    phase: JobPhase = Field(default=JobPhase.PENDING, description="Lifecycle phase.")
    active: int = Field(default=0, description="Pods pending or running.")
    succeeded: int = Field(default=0, description="Pods that succeeded.")
    failed: int = Field(default=0, description="Pods that failed.")
    completions_text: str = Field(
        default="", description="Succeeded over wanted completions, e.g. 1/4 (for tables)."
    )
    start_time: datetime | None = Field(
        default=None, description="When the job last started (reset when resumed)."
    )
    completion_time: datetime | None = Field(
        default=None, description="When the job completed successfully."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Complete, Failed and Suspended, with reasons."
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this status was computed for."
    )
    reason: str = Field(
        default="", description="Why the job waits, e.g. NoQuota or Preempted (empty once running)."
    )
    message: str = Field(
        default="",
        description="Why the job waits in words, from its Workload, e.g. needs 4 cpu in "
        "flavor default, clusterqueue default has 2 free.",
    )
    run_id: str = Field(
        default="",
        description="The tracking run the job's pods log to (CNAI_RUN_ID), set when it starts.",
    )


class Job(Resource):
    """Runs pods to completion: a batch computation with retries and a deadline."""

    KIND: ClassVar[str] = "Job"
    PLURAL: ClassVar[str] = "jobs"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()

    spec: JobSpec = Field(description="What to run.")
    status: JobStatus = Field(default_factory=JobStatus, description="What happened.")

    def condition(self, type: ConditionType) -> Condition | None:
        """The condition of ``type``, if the job has one."""
        return next((c for c in self.status.conditions if c.type == type), None)
