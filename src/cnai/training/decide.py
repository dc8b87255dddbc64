"""The TrainJob controller's decision: a pure function from (job, its pods, what its
Workload allows, now) to what to do.

The gang is the unit. Its nodes start together once the Workload is admitted (at the
admitted size, between minNodes and maxNodes), and any change to the gang restarts all
of it as a new gang (``status.restarts`` + 1), with the restart count in its
environment, so the script resumes from its latest checkpoint:

- a node failed: the failure policy decides by exit code: FailJob fails the job at once,
  Ignore restarts the gang uncounted, Count (the default) restarts it counted against
  ``backoffLimit`` and fails the job past it;
- the Workload was preempted (evicted), or the job suspended: the nodes get SIGTERM and
  their grace period; the job queues again and a new gang starts when re-admitted;
- the admitted size changed (an elastic job grew into freed capacity, or was shrunk by
  preemption to a size still at or above minNodes): a new gang at the new size.

Only failures count against ``backoffLimit``. A new gang starts only once every pod of
the previous ones has stopped, so two gangs never train (or write checkpoints) at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cnai.core.kinds import EventType
from cnai.core.meta import is_true, set_condition
from cnai.core.pods import Pod, PodPhase
from cnai.scheduling.gate import Gate
from cnai.training.api import (
    ConditionType,
    FailureAction,
    ReplicaStatus,
    TrainJob,
    TrainJobPhase,
    TrainJobStatus,
)
from cnai.training.gang import gang_of, rank_of, world_of


@dataclass(frozen=True)
class Note:
    """An Event to record about the job."""

    type: EventType
    reason: str
    message: str


@dataclass
class Decision:
    """The desired status and the actions that get the world there."""

    status: TrainJobStatus
    create: list[int] = field(default_factory=list)  # ranks of the current gang to create
    delete: list[str] = field(default_factory=list)  # names of pods to stop or remove
    notes: list[Note] = field(default_factory=list)
    delete_job: bool = False
    requeue_after: float | None = None

    def requeue_at(self, when: datetime, now: datetime) -> None:
        delay = max((when - now).total_seconds(), 0.0)
        if self.requeue_after is None or delay < self.requeue_after:
            self.requeue_after = delay

    def note(self, type: EventType, reason: str, message: str) -> None:
        self.notes.append(Note(type, reason, message))


def stopping(pod: Pod) -> bool:
    return pod.metadata.deletion_timestamp is not None


def running(pod: Pod) -> bool:
    """Not ended: pending or running, including a pod being stopped."""
    return not pod.status.phase.terminal


def finish_time(status: TrainJobStatus) -> datetime | None:
    for c in status.conditions:
        if c.type in (ConditionType.COMPLETE, ConditionType.FAILED) and c.status == "True":
            return c.last_transition_time
    return None


@dataclass(frozen=True)
class _Pods:
    """The job's pods, split by gang."""

    current: tuple[Pod, ...]  # of the current gang (status.restarts)
    earlier: tuple[Pod, ...]  # of earlier gangs

    @classmethod
    def of(cls, pods: list[Pod], gang: int) -> _Pods:
        return cls(
            tuple(sorted((p for p in pods if gang_of(p) == gang), key=rank_of)),
            tuple(p for p in pods if gang_of(p) != gang),
        )

    @property
    def live(self) -> list[Pod]:
        """Current pods still running and not being stopped."""
        return [p for p in self.current if running(p) and not stopping(p)]


def decide(job: TrainJob, pods: list[Pod], gate: Gate, now: datetime) -> Decision:
    """What to do about ``job`` whose pods are ``pods``, given what its Workload allows."""
    now = now.replace(microsecond=0)
    status = job.status.model_copy(deep=True)
    status.observed_generation = job.metadata.generation
    decision = Decision(status=status)
    split = _Pods.of(pods, status.restarts)
    # Pods of gangs before the previous one are history no one needs: removed once ended.
    decision.delete += [
        p.metadata.name
        for p in split.earlier
        if not running(p) and not stopping(p) and gang_of(p) < status.restarts - 1
    ]
    # Earlier gangs' pods still running are stopped (e.g. after a crash mid-restart).
    decision.delete += [p.metadata.name for p in split.earlier if running(p) and not stopping(p)]
    if finish_time(status) is None:
        _progress(job, split, gate, now, decision)
    else:
        decision.delete += [p.metadata.name for p in split.live]
    _expire(job, now, decision)
    _report(job, split, decision)
    return decision


def _progress(job: TrainJob, split: _Pods, gate: Gate, now: datetime, d: Decision) -> None:
    spec, status = job.spec, d.status
    # 1. Suspended: stop the gang (SIGTERM, then its grace period to checkpoint).
    if spec.suspend:
        _stop_gang(d, split, "Suspended", "")
        status.phase = TrainJobPhase.SUSPENDED
        status.reason, status.message = "", ""
        if set_condition(
            status.conditions, ConditionType.SUSPENDED, True, "JobSuspended", "suspended", now
        ):
            d.note(EventType.NORMAL, "Suspended", "TrainJob suspended; its nodes are stopping")
        return
    if is_true(status.conditions, ConditionType.SUSPENDED):
        set_condition(
            status.conditions, ConditionType.SUSPENDED, False, "JobResumed", "resumed", now
        )
        d.note(EventType.NORMAL, "Resumed", "TrainJob resumed; it queues again")
        status.start_time = None
        status.phase = TrainJobPhase.PENDING
    # 2. Not admitted (waiting, or preempted): no gang runs.
    if not gate.admitted:
        if (split.live or gate.evicted) and _stop_gang(d, split, "Preempted", gate.message):
            d.note(EventType.WARNING, "Preempted", gate.message)
            status.start_time = None  # as after a suspend: the deadline runs from re-admission
        status.reason, status.message = gate.reason, gate.message
        set_condition(
            status.conditions, ConditionType.ADMITTED, False, gate.reason, gate.message, now
        )
        status.phase = TrainJobPhase.RESTARTING if status.restarts else TrainJobPhase.PENDING
        return
    if set_condition(status.conditions, ConditionType.ADMITTED, True, "Admitted", "", now):
        d.note(EventType.NORMAL, "Admitted", f"admitted with {gate.count} nodes")
    if status.start_time is None:
        status.start_time = now
    # 3. Past the deadline (counted from when it last started): fail.
    if spec.active_deadline_seconds is not None:
        deadline = status.start_time + timedelta(seconds=spec.active_deadline_seconds)
        if now >= deadline:
            message = (
                f"TrainJob was active longer than its deadline ({spec.active_deadline_seconds}s)"
            )
            _fail(d, split, now, "DeadlineExceeded", message)
            return
        d.requeue_at(deadline, now)
    size = gate.count or 0
    # 4. The admitted size changed (grown or shrunk): a new gang at the new size.
    sizes = {world_of(p) for p in split.current}
    if split.current and sizes != {size}:
        old = max(sizes)
        message = f"resizing from {old} to {size} nodes; restarting from the latest checkpoint"
        if _stop_gang(d, split, "Resized", message):
            d.note(EventType.NORMAL, "Resized", message)
        return
    # 5. A node failed: the failure policy decides.
    failed = [p for p in split.current if p.status.phase is PodPhase.FAILED and not stopping(p)]
    if failed:
        _on_failure(job, split, failed[0], now, d)
        return
    # 6. Every node succeeded: done.
    done = {rank_of(p) for p in split.current if p.status.phase is PodPhase.SUCCEEDED}
    if done >= set(range(size)):
        set_condition(
            status.conditions, ConditionType.COMPLETE, True, "Completed", "all nodes succeeded", now
        )
        status.phase = TrainJobPhase.SUCCEEDED
        status.completion_time = now
        status.reason, status.message = "", ""
        d.requeue_after = None
        d.note(EventType.NORMAL, "Completed", f"{size} nodes succeeded")
        return
    # 7. Start the nodes the gang lacks, once every earlier pod has stopped.
    status.num_nodes = size
    if any(running(p) for p in split.earlier):
        status.reason = "WaitingForPreviousGang"
        status.message = "waiting for the previous gang's pods to stop"
        status.phase = TrainJobPhase.RESTARTING
        return
    have = {rank_of(p) for p in split.current}
    d.create = [r for r in range(size) if r not in have]
    status.reason, status.message = "", ""
    started = any(p.status.phase is PodPhase.RUNNING for p in split.live)
    if started:
        status.phase = TrainJobPhase.RUNNING
    elif status.phase is not TrainJobPhase.RUNNING:
        status.phase = TrainJobPhase.RESTARTING if status.restarts else TrainJobPhase.PENDING


def _on_failure(job: TrainJob, split: _Pods, pod: Pod, now: datetime, d: Decision) -> None:
    status, code = d.status, pod.status.exit_code
    what = f"node {rank_of(pod)} (pod {pod.metadata.name}) failed"
    what += f" with exit code {code}" if code is not None else f": {pod.status.reason}"
    if pod.status.reason == "OOMKilled":
        what += " (OOMKilled)"
    action = job.spec.failure_policy.action_for(code)
    if action is FailureAction.FAIL_JOB:
        _fail(d, split, now, "PodFailurePolicy", f"{what}, which the failure policy makes fatal")
        return
    if action is FailureAction.COUNT:
        status.failures += 1
        if status.failures > job.spec.backoff_limit:
            message = f"{what}; the backoff limit ({job.spec.backoff_limit}) is reached"
            _fail(d, split, now, "BackoffLimitExceeded", message)
            return
        message = (
            f"{what}; restarting the gang (failure {status.failures} of "
            f"{job.spec.backoff_limit} allowed)"
        )
    else:
        message = f"{what}; the failure policy ignores it: restarting the gang"
    _stop_gang(d, split, "Restarting", message)
    d.note(EventType.WARNING, "Restarting", message)


def _stop_gang(d: Decision, split: _Pods, reason: str, message: str) -> bool:
    """Stop the current gang; if it had started, the next one is a new gang. True if it
    had (so the caller records the event once)."""
    d.delete += [p.metadata.name for p in split.live]
    if not split.current:
        return False
    d.status.restarts += 1
    d.status.phase = TrainJobPhase.RESTARTING
    d.status.reason, d.status.message = reason, message
    return True


def _fail(d: Decision, split: _Pods, now: datetime, reason: str, message: str) -> None:
    status = d.status
    set_condition(status.conditions, ConditionType.FAILED, True, reason, message, now)
    status.phase = TrainJobPhase.FAILED
    status.reason, status.message = reason, message
    d.delete += [p.metadata.name for p in split.live]
    d.requeue_after = None
    d.note(EventType.WARNING, reason, message)


def _expire(job: TrainJob, now: datetime, d: Decision) -> None:
    ttl = job.spec.ttl_seconds_after_finished
    finished = finish_time(d.status)
    if ttl is None or finished is None:
        return
    expiry = finished + timedelta(seconds=ttl)
    if now >= expiry:
        d.delete_job = True
    else:
        d.requeue_at(expiry, now)


def _report(job: TrainJob, split: _Pods, d: Decision) -> None:
    """Per-node state of the current gang, and the sizes for tables."""
    status = d.status
    status.replicas = [
        ReplicaStatus(
            rank=rank_of(p),
            pod=p.metadata.name,
            phase=p.status.phase,
            exit_code=p.status.exit_code,
            reason=p.status.reason,
        )
        for p in split.current
    ]
    wanted = job.spec.trainer.most_nodes
    status.nodes_text = f"{status.num_nodes}/{wanted}"
