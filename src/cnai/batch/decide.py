"""The job controller's decision: a pure function from (job, its pods, now) to what to do.

No I/O and no clock here: the reconciler reads the world, calls :func:`decide`, and
performs the returned actions. The returned status already counts the pods the actions
create and delete, so the next reconcile of an unchanged world decides nothing new and
writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cnai.batch.api import ConditionType, Job, JobPhase, JobStatus, Reason
from cnai.batch.pods import PodCounts, next_attempt
from cnai.batch.workload import OPEN, Gate
from cnai.core import meta
from cnai.core.kinds import EventType
from cnai.core.pods import Pod
from cnai.scheduling.snapshots import pod_order


@dataclass(frozen=True)
class Note:
    """An Event to record about the job."""

    type: EventType
    reason: str
    message: str


@dataclass
class Decision:
    """The desired status and the actions that get the world there."""

    status: JobStatus
    create: list[int] = field(default_factory=list)  # attempt numbers of pods to create
    delete: list[str] = field(default_factory=list)  # names of active pods to stop
    notes: list[Note] = field(default_factory=list)
    delete_job: bool = False
    requeue_after: float | None = None

    def skipped_creates(self, count: int) -> None:
        """Some pods could not be created (their names were taken): do not count them."""
        self.status.active -= count

    def requeue_at(self, when: datetime, now: datetime) -> None:
        """Ask to be woken at ``when`` (the earliest of all such asks wins)."""
        delay = max((when - now).total_seconds(), 0.0)
        if self.requeue_after is None or delay < self.requeue_after:
            self.requeue_after = delay


def set_condition(
    status: JobStatus, type: ConditionType, value: bool, reason: str, message: str, now: datetime
) -> bool:
    """Set a condition of the job (:func:`cnai.core.meta.set_condition`). True if new."""
    return meta.set_condition(status.conditions, type, value, reason, message, now)


def is_true(status: JobStatus, type: ConditionType) -> bool:
    return meta.is_true(status.conditions, type)


def finish_time(status: JobStatus) -> datetime | None:
    """When the job completed or failed, from its terminal condition."""
    for c in status.conditions:
        if c.type in (ConditionType.COMPLETE, ConditionType.FAILED) and c.status == "True":
            return c.last_transition_time
    return None


def decide(job: Job, pods: list[Pod], now: datetime, gate: Gate = OPEN) -> Decision:
    """What to do about ``job`` whose pods are ``pods``, at ``now``, with what its
    Workload allows (``gate``: admitted and how many pods, pending, or evicted)."""
    now = now.replace(microsecond=0)
    status = job.status.model_copy(deep=True)
    status.observed_generation = job.metadata.generation
    counts = PodCounts.of(pods)
    decision = Decision(status=status)
    # 1. A finished job only stops stragglers and waits for its time to live to run out.
    if finish_time(status) is None:
        _progress(job, counts, now, decision, gate)
        if status.phase is not JobPhase.SUSPENDED and not status.phase.terminal:
            _admitted(job, pods, counts, decision, gate)
    else:
        decision.delete = [p.metadata.name for p in counts.active]
    if status.phase is JobPhase.SUSPENDED or status.phase.terminal:
        status.reason, status.message = "", ""
    _expire(job, now, decision)
    _count(job, counts, decision)
    return decision


def _progress(job: Job, counts: PodCounts, now: datetime, decision: Decision, gate: Gate) -> None:
    """Phases 2-5: complete, fail on backoff, suspend or resume, fail on the deadline."""
    status, spec = decision.status, job.spec
    # 2. Enough pods succeeded: done.
    if counts.succeeded >= spec.completions:
        message = f"{counts.succeeded}/{spec.completions} pods succeeded"
        _finish(decision, counts, now, ConditionType.COMPLETE, Reason.COMPLETED, message)
        status.completion_time = now
        return
    # 3. More failures than the backoff limit allows: give up.
    if counts.failed > spec.backoff_limit:
        message = f"Job has reached the specified backoff limit ({spec.backoff_limit})"
        _finish(decision, counts, now, ConditionType.FAILED, Reason.BACKOFF_LIMIT_EXCEEDED, message)
        return
    # 4. Suspended: stop what runs; the deadline does not run while suspended.
    if spec.suspend:
        decision.delete = [p.metadata.name for p in counts.active]
        status.phase = JobPhase.SUSPENDED
        if set_condition(
            status, ConditionType.SUSPENDED, True, Reason.JOB_SUSPENDED, "Job suspended", now
        ):
            decision.notes.append(Note(EventType.NORMAL, "Suspended", "Job suspended"))
        return
    if is_true(status, ConditionType.SUSPENDED):
        set_condition(
            status, ConditionType.SUSPENDED, False, Reason.JOB_RESUMED, "Job resumed", now
        )
        decision.notes.append(Note(EventType.NORMAL, "Resumed", "Job resumed"))
        status.start_time = None  # it starts again once admitted
        status.phase = JobPhase.PENDING
    # The job starts (and its deadline runs) once its Workload is admitted.
    if status.start_time is None and gate.admitted:
        status.start_time = now
    # 5. Running past the deadline: give up.
    if spec.active_deadline_seconds is not None and status.start_time is not None:
        deadline = status.start_time + timedelta(seconds=spec.active_deadline_seconds)
        if now >= deadline:
            message = "Job was active longer than specified deadline"
            _finish(decision, counts, now, ConditionType.FAILED, Reason.DEADLINE_EXCEEDED, message)
        else:
            decision.requeue_at(deadline, now)


def _finish(
    decision: Decision,
    counts: PodCounts,
    now: datetime,
    type: ConditionType,
    reason: Reason,
    message: str,
) -> None:
    succeeded = type is ConditionType.COMPLETE
    set_condition(decision.status, type, True, reason, message, now)
    decision.status.phase = JobPhase.SUCCEEDED if succeeded else JobPhase.FAILED
    decision.delete = [p.metadata.name for p in counts.active]
    decision.requeue_after = None  # a deadline no longer matters
    event_type = EventType.NORMAL if succeeded else EventType.WARNING
    decision.notes.append(Note(event_type, reason.value, message))


def _admitted(job: Job, pods: list[Pod], counts: PodCounts, decision: Decision, gate: Gate) -> None:
    """Phase 6: what the Workload allows. Evicted: stop every pod; pending: wait and say
    why; admitted: start pods. Pods beyond parallelism (it was lowered) are stopped."""
    status = decision.status
    if gate.evicted:
        decision.delete = [p.metadata.name for p in counts.active]
        if status.reason != gate.reason:
            decision.notes.append(Note(EventType.WARNING, gate.reason, gate.message))
    if gate.admitted:
        status.reason, status.message = "", ""
        # Shrunk (by preemption or to a lowered count): stop the pods beyond its placement.
        active = {p.metadata.name for p in counts.active}
        decision.delete += [n for n in gate.surplus if n in active and n not in decision.delete]
    _excess(job, counts, decision)
    if gate.admitted:
        _create(job, pods, counts, decision, gate.count)
    else:
        status.reason, status.message = gate.reason, gate.message


def _excess(job: Job, counts: PodCounts, decision: Decision) -> None:
    """More pods active than parallelism (it was lowered): stop the newest,
    highest-numbered first, as Kubernetes does. Keep in sync with the scheduler, which
    keeps the oldest pods' slots when it trims the Workload
    (``cnai.scheduling.snapshots.surplus_pods``): both stop the same pods."""
    staying = [p for p in counts.active if p.metadata.name not in decision.delete]
    newest = sorted(staying, key=pod_order, reverse=True)
    extra = max(len(staying) - job.spec.parallelism, 0)
    decision.delete += [p.metadata.name for p in newest[:extra]]


def _create(
    job: Job, pods: list[Pod], counts: PodCounts, decision: Decision, limit: int | None
) -> None:
    """Start pods up to parallelism (and the admitted count), never past the completions
    still wanted."""
    active = sum(1 for p in counts.active if p.metadata.name not in decision.delete)
    most = job.spec.parallelism if limit is None else min(job.spec.parallelism, limit)
    wanted = min(most - active, job.spec.completions - counts.succeeded - active)
    first = next_attempt(pods)
    decision.create = list(range(first, first + max(wanted, 0)))


def _expire(job: Job, now: datetime, decision: Decision) -> None:
    """Phase 7: a finished job is deleted once its time to live has run out."""
    ttl = job.spec.ttl_seconds_after_finished
    finished = finish_time(decision.status)
    if ttl is None or finished is None:
        return
    expiry = finished + timedelta(seconds=ttl)
    if now >= expiry:
        decision.delete_job = True
    else:
        decision.requeue_at(expiry, now)


def _count(job: Job, counts: PodCounts, decision: Decision) -> None:
    """Phase 8: counts and phase as they will be once the actions are done."""
    status = decision.status
    stopped = set(decision.delete)
    status.active = sum(1 for p in counts.active if p.metadata.name not in stopped) + len(
        decision.create
    )
    status.succeeded = counts.succeeded
    status.failed = counts.failed
    status.completions_text = f"{counts.succeeded}/{job.spec.completions}"
    if status.phase is JobPhase.PENDING and (counts.running or counts.succeeded or counts.failed):
        status.phase = JobPhase.RUNNING
