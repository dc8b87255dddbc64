"""The job controller: turns a Job into pods, counts their outcomes, and finishes the job.

Shape (STYLE.md): read; if gone, return; decide in :func:`cnai.batch.decide.decide`;
perform its actions idempotently; write status only if it changed; requeue for the
deadline or the time to live. Pods are created and deleted through the
:class:`ResourceService`, so they pass the same admission chain as a user's.

A started job gets a tracking run and a token to log to it
(:mod:`cnai.tracking.workloads`): its pods are created once both exist, with
``CNAI_RUN_ID`` and ``CNAI_TOKEN`` in their environment; when the job ends its run is
ended and its token revoked.

Every Job goes through the scheduler (DESIGN.md section 3): the controller creates the
Job's Workload, starts pods only while it is admitted (bound to the nodes of its
placement), stops them when it is evicted, marks it finished when the job is done (its
quota is then free), and deletes it while the job is suspended or its parallelism is 0.
When the pods the job wants at once change (parallelism or minParallelism edited, fewer
completions left), it updates the Workload's count and minCount: the scheduler grows an
admitted Workload whose count rose and trims one whose count fell, and the job starts
pods on the new slots or stops the surplus ones.
"""

from __future__ import annotations

import contextlib
import logging

from cnai.batch.api import Job, JobPhase, JobStatus
from cnai.batch.decide import Decision, decide, finish_time
from cnai.batch.pods import PodCounts, build_pod, pod_name, pod_selector
from cnai.batch.workload import (
    WORKLOADS,
    build_workload,
    free_slots,
    gate_of,
    resized,
    wanted_pods,
)
from cnai.core.clock import Clock
from cnai.core.controllers.types import ControllerContext, ControllerSpec, Request, Result
from cnai.core.errors import AlreadyExists, ApiError, Conflict, NotFound
from cnai.core.events import EventRecorder
from cnai.core.kinds import EventType
from cnai.core.pods import EnvVar, Pod
from cnai.core.resources import ResourceService
from cnai.scheduling import transitions
from cnai.scheduling.api import PodPlacement, Workload, WorkloadPhase
from cnai.tracking.workloads import SECRETS, WorkloadTracking, workload_tracking

log = logging.getLogger("cnai.batch")

JOBS = "jobs"
PODS = "pods"
COMPONENT = "job-controller"
# How soon to look again when a pod name is held by a pod of another job (an older job
# of the same name whose pods the garbage collector has not removed yet).
NAME_TAKEN_RETRY_S = 5.0
# How soon to look again when a Workload resize lost to a concurrent write (the scheduler's).
CONFLICT_RETRY_S = 0.1


class JobReconciler:
    """Reconciles one Job at a time against the store."""

    def __init__(
        self,
        service: ResourceService,
        clock: Clock,
        recorder: EventRecorder,
        tracking: WorkloadTracking | None = None,
    ) -> None:
        self.service = service
        self.clock = clock
        self.recorder = recorder
        self.tracking = tracking

    async def reconcile(self, request: Request) -> Result:
        # 1. Read; a job that is gone or going needs nothing (the GC removes its pods).
        try:
            raw = await self.service.get(JOBS, request.namespace, request.name)
        except NotFound:
            return Result()
        job = Job.model_validate(raw)
        if job.metadata.deletion_timestamp is not None:
            return Result()
        listed = await self.service.list(PODS, job.metadata.namespace, pod_selector(job))
        pods = [Pod.model_validate(p) for p in listed.items]
        workload = await self._workload(job, pods)
        workload, stale = await self._resize(job, workload, pods)
        # 2. Decide.
        gate = gate_of(workload, PodCounts.of(pods).active, job.spec.parallelism)
        decision = decide(job, pods, self.clock.now(), gate)
        # 3. Act: stop pods, then start pods on the free slots of the Workload's placement
        # (once the job's tracking run and token exist).
        for name in decision.delete:
            await self._delete_pod(job, name)
        staying = [p for p in PodCounts.of(pods).active if p.metadata.name not in decision.delete]
        slots = free_slots(workload, staying)
        env = await self._tracking_env(job, decision) if decision.create and slots else []
        taken = [
            a
            for i, a in enumerate(decision.create)
            if env is None or i >= len(slots) or not await self._create_pod(job, a, slots[i], env)
        ]
        decision.skipped_creates(len(taken))
        finished = finish_time(decision.status)
        if finished is not None and self.tracking is not None:
            succeeded = decision.status.phase is JobPhase.SUCCEEDED
            await self.tracking.finish(job, decision.status.run_id, succeeded)
        # 4. Write status only if it changed; Events follow the write they describe.
        version = job.metadata.resource_version
        if decision.status != job.status:
            body = job.model_copy(update={"status": decision.status}).to_dict()
            written = await self.service.update(
                JOBS, body, job.metadata.namespace, job.metadata.name, status=True
            )
            version = written["metadata"]["resourceVersion"]
        for note in decision.notes:
            await self.recorder.record(job, note.type, note.reason, note.message)
        await self._settle_workload(job, workload, decision.status)
        # 5. Past its time to live, the job goes; its pods follow by owner reference.
        if decision.delete_job:
            await self._delete_job(job, version)
            return Result()
        requeue = decision.requeue_after
        waits = ((taken and env is not None, NAME_TAKEN_RETRY_S), (stale, CONFLICT_RETRY_S))
        for retry, after in waits:
            if retry:
                requeue = after if requeue is None else min(requeue, after)
        return Result(requeue_after=requeue)

    async def _workload(self, job: Job, pods: list[Pod]) -> Workload | None:
        """The job's Workload, created if a running job has none (idempotent)."""
        ns, name = job.metadata.namespace, job.metadata.name
        try:
            wl = Workload.model_validate(await self.service.get(WORKLOADS, ns, name))
        except NotFound:
            wl = None
        if wl is not None and any(r.uid == job.metadata.uid for r in wl.metadata.owner_references):
            return wl
        count = wanted_pods(job, PodCounts.of(pods).succeeded)
        if wl is not None or job.spec.suspend or finish_time(job.status) is not None or count < 1:
            return None  # another job's leftover (the GC removes it), or none wanted
        created = await self.service.create(WORKLOADS, build_workload(job, count).to_dict(), ns)
        return Workload.model_validate(created)

    async def _resize(
        self, job: Job, wl: Workload | None, pods: list[Pod]
    ) -> tuple[Workload | None, bool]:
        """The Workload asking for the pods the job wants now (an update at the version
        read). True with the unchanged Workload if that write lost to a concurrent one:
        the job is looked at again shortly."""
        if wl is None or job.spec.suspend or finish_time(job.status) is not None:
            return wl, False
        count = wanted_pods(job, PodCounts.of(pods).succeeded)
        new = resized(wl, job, count) if count >= 1 else None  # 0: deleted when settling
        if new is None:
            return wl, False
        ns, name = job.metadata.namespace, job.metadata.name
        try:
            written = await self.service.update(WORKLOADS, new.to_dict(), ns, name)
        except Conflict:
            log.debug("workload %s/%s changed meanwhile; resizing it again", ns, name)
            return wl, True
        return Workload.model_validate(written), False

    async def _settle_workload(
        self, job: Job, workload: Workload | None, status: JobStatus
    ) -> None:
        """A finished job's Workload is marked finished (its quota is free); a suspended
        job's, or one whose parallelism is 0, is deleted (it queues again when resumed
        or given a parallelism)."""
        if workload is None:
            return
        ns, name = job.metadata.namespace, job.metadata.name
        finished = finish_time(status)
        if finished is not None and workload.status.phase is not WorkloadPhase.FINISHED:
            done = transitions.finished(workload.status, f"job {name} finished", finished)
            body = workload.model_copy(update={"status": done}).to_dict()
            await self.service.update(WORKLOADS, body, ns, name, status=True)
        elif finished is None and (job.spec.suspend or job.spec.parallelism == 0):
            with contextlib.suppress(NotFound):
                await self.service.delete(WORKLOADS, ns, name)

    async def _tracking_env(self, job: Job, decision: Decision) -> list[EnvVar] | None:
        """The run and token variables of the job's pods; None while its token Secret
        waits to be filled in (that write wakes the job: it owns the Secret)."""
        if self.tracking is None:
            return []
        started = await self.tracking.start(job, job.status.run_id)
        if started is None:
            return None
        decision.status.run_id = started.run_id
        return started.env()

    async def _create_pod(
        self, job: Job, attempt: int, slot: PodPlacement, env: list[EnvVar]
    ) -> bool:
        """Create one attempt's pod; False if its name is held by another job's pod."""
        pod = build_pod(job, attempt, slot, env)
        try:
            await self.service.create(PODS, pod.to_dict(), job.metadata.namespace)
        except AlreadyExists:
            return await self._is_ours(job, pod_name(job.metadata.name, attempt))
        except ApiError as exc:
            await self.recorder.record(
                job, EventType.WARNING, "FailedCreate", f"Error creating pod: {exc.message}"
            )
            raise
        await self.recorder.record(
            job, EventType.NORMAL, "SuccessfulCreate", f"Created pod: {pod.metadata.name}"
        )
        return True

    async def _is_ours(self, job: Job, name: str) -> bool:
        # Ours (a run the pod list did not show yet): nothing to do. Another job's: wait.
        try:
            existing = Pod.model_validate(
                await self.service.get(PODS, job.metadata.namespace, name)
            )
        except NotFound:
            return False  # gone again since; the next reconcile creates it
        if any(ref.uid == job.metadata.uid for ref in existing.metadata.owner_references):
            return True
        log.info("pod %s/%s belongs to another job; retrying", job.metadata.namespace, name)
        return False

    async def _delete_pod(self, job: Job, name: str) -> None:
        try:
            await self.service.delete(PODS, job.metadata.namespace, name)
        except NotFound:
            return
        await self.recorder.record(
            job, EventType.NORMAL, "SuccessfulDelete", f"Deleted pod: {name}"
        )

    async def _delete_job(self, job: Job, version: str | None) -> None:
        # At the version just read or written: a job edited meanwhile is looked at again.
        with contextlib.suppress(NotFound):
            await self.service.delete(JOBS, job.metadata.namespace, job.metadata.name, version)


def job_controller(ctx: ControllerContext) -> ControllerSpec:
    """The ControllerFactory of the job controller."""
    reconciler = JobReconciler(
        ctx.service, ctx.clock, ctx.recorder(COMPONENT), workload_tracking(ctx)
    )
    return ControllerSpec(
        name=COMPONENT, kind=JOBS, reconciler=reconciler, owns=(PODS, WORKLOADS, SECRETS)
    )
