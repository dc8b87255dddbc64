"""The TrainJob controller: one Workload for the gang, pods with torchrun's environment,
and whole-gang restarts (see :mod:`cnai.training.decide` for the rules).

Shape (STYLE.md): read; if gone, return; decide in a pure function; act idempotently
(pods and the Workload through the :class:`ResourceService`, so they pass the same
admission chain as a user's); write status only if it changed; requeue for the deadline
or the time to live. A started job gets a tracking run and a token for its nodes
(:mod:`cnai.tracking.workloads`) and a checkpoint directory kept across its gangs.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from cnai.core.clock import Clock
from cnai.core.controllers.types import ControllerContext, ControllerSpec, Request, Result
from cnai.core.errors import AlreadyExists, ApiError, NotFound
from cnai.core.events import EventRecorder
from cnai.core.kinds import EventType
from cnai.core.meta import ObjectMeta, controller_ref
from cnai.core.pods import EnvVar, Pod
from cnai.core.resources import ResourceService
from cnai.scheduling import transitions
from cnai.scheduling.api import PodSet, Workload, WorkloadPhase, WorkloadSpec
from cnai.scheduling.gate import admission_gate, free_slots
from cnai.tracking.store import DEFAULT_GROUP
from cnai.tracking.workloads import SECRETS, WorkloadTracking, workload_tracking
from cnai.training.api import TrainJob, TrainJobPhase
from cnai.training.decide import Decision, decide, finish_time, running, stopping
from cnai.training.gang import (
    Node,
    build_pod,
    checkpoint_dir,
    free_port,
    gang_of,
    port_of,
    selector,
    workload_name,
)

log = logging.getLogger("cnai.training")

TRAINJOBS = "trainjobs"
PODS = "pods"
WORKLOADS = "workloads"
COMPONENT = "trainjob-controller"
DEFAULT_QUEUE = "default"
POD_SET = "nodes"
# How soon to look again when a pod name is held by another job's pod.
NAME_TAKEN_RETRY_S = 5.0


def build_workload(job: TrainJob) -> Workload:
    """The gang as one pod set: maxNodes pods, at least minNodes (partial admission)."""
    trainer = job.spec.trainer
    most, fewest = trainer.most_nodes, trainer.fewest_nodes
    return Workload(
        metadata=ObjectMeta(
            name=workload_name(job),
            namespace=job.metadata.namespace,
            owner_references=[controller_ref(job)],
        ),
        spec=WorkloadSpec(
            queue_name=job.spec.queue or DEFAULT_QUEUE,
            priority_class_name=job.spec.priority_class_name,
            pod_sets=[
                PodSet(
                    name=POD_SET,
                    count=most,
                    min_count=fewest if fewest < most else None,
                    requests=dict(trainer.resources_per_node.requests),
                )
            ],
        ),
    )


class TrainJobReconciler:
    """Reconciles one TrainJob at a time against the store."""

    def __init__(
        self,
        service: ResourceService,
        clock: Clock,
        recorder: EventRecorder,
        tracking: WorkloadTracking | None = None,
        checkpoint_root: Path | None = None,
    ) -> None:
        self.service = service
        self.clock = clock
        self.recorder = recorder
        self.tracking = tracking
        self.checkpoint_root = checkpoint_root

    async def reconcile(self, request: Request) -> Result:
        # 1. Read.
        try:
            raw = await self.service.get(TRAINJOBS, request.namespace, request.name)
        except NotFound:
            return Result()
        job = TrainJob.model_validate(raw)
        if job.metadata.deletion_timestamp is not None:
            return Result()
        listed = await self.service.list(PODS, job.metadata.namespace, selector(job))
        pods = [Pod.model_validate(p) for p in listed.items]
        workload = await self._workload(job)
        current = [p for p in pods if gang_of(p) == job.status.restarts]
        live = [p for p in current if running(p) and not stopping(p)]
        # 2. Decide.
        decision = decide(job, pods, admission_gate(workload, live), self.clock.now())
        # 3. Act: stop pods, then start the gang's missing nodes on free slots.
        for name in decision.delete:
            await self._delete_pod(job, name)
        taken = False
        if decision.create:
            taken = not await self._start(job, decision, workload, current, live)
        finished = finish_time(decision.status)
        if self.tracking is not None and finished is None and not job.spec.suspend:
            # Queued or running: the run and the token are ready before the pods need them.
            group = job.spec.run_group or DEFAULT_GROUP
            run_id = await self.tracking.prepare(job, decision.status.run_id, group)
            decision.status.run_id = run_id
        # 4. Status, then the Events describing it.
        version = job.metadata.resource_version
        if decision.status != job.status:
            body = job.model_copy(update={"status": decision.status}).to_dict()
            written = await self.service.update(
                TRAINJOBS, body, job.metadata.namespace, job.metadata.name, status=True
            )
            version = written["metadata"]["resourceVersion"]
        for note in decision.notes:
            await self.recorder.record(job, note.type, note.reason, note.message)
        if finished is not None and self.tracking is not None:  # after the status: no wait
            succeeded = decision.status.phase is TrainJobPhase.SUCCEEDED
            await self.tracking.finish(job, decision.status.run_id, succeeded)
        await self._settle_workload(job, workload, decision)
        # 5. Past its time to live, the job goes; its pods follow by owner reference.
        if decision.delete_job:
            with contextlib.suppress(NotFound):
                await self.service.delete(
                    TRAINJOBS, job.metadata.namespace, job.metadata.name, version
                )
            return Result()
        requeue = decision.requeue_after
        if taken:
            requeue = NAME_TAKEN_RETRY_S if requeue is None else min(requeue, NAME_TAKEN_RETRY_S)
        return Result(requeue_after=requeue)

    async def _start(
        self,
        job: TrainJob,
        decision: Decision,
        workload: Workload | None,
        current: list[Pod],
        live: list[Pod],
    ) -> bool:
        """Create the gang's missing nodes; False if one could not be (its name is held
        by another job's pod), so the job is looked at again shortly."""
        env = await self._tracking_env(job, decision)
        if env is None:  # the token Secret is being filled in; that write wakes the job
            decision.create = []
            return True
        decision.status.checkpoint_dir = self._checkpoint_dir(job)
        port = port_of(current) or free_port()
        slots = free_slots(workload, live)
        # A whole new gang, rank r in slot r: each pod also names every rank's node.
        whole = decision.create == list(range(decision.status.num_nodes))
        count = len(decision.create)
        gang_nodes = [s.node_name for s in slots[:count]] if whole and len(slots) >= count else []
        ok = True
        for i, rank in enumerate(decision.create):
            if i >= len(slots):
                break
            node = Node(
                rank=rank,
                world=decision.status.num_nodes,
                gang=decision.status.restarts,
                port=port,
                checkpoints=decision.status.checkpoint_dir,
                extra_env=env,
            )
            pod = build_pod(job, node, slots[i], gang_nodes)
            ok = await self._create_pod(job, pod) and ok
        return ok

    async def _tracking_env(self, job: TrainJob, decision: Decision) -> list[EnvVar] | None:
        if self.tracking is None:
            return []
        group = job.spec.run_group or DEFAULT_GROUP
        started = await self.tracking.start(job, job.status.run_id, group)
        if started is None:
            return None
        decision.status.run_id = started.run_id
        return started.env()

    def _checkpoint_dir(self, job: TrainJob) -> str:
        if job.status.checkpoint_dir:
            return job.status.checkpoint_dir
        if self.checkpoint_root is None:
            return ""
        path = checkpoint_dir(str(self.checkpoint_root), job)
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    async def _workload(self, job: TrainJob) -> Workload | None:
        """The job's Workload, created if a job that wants to run has none (idempotent)."""
        ns, name = job.metadata.namespace, workload_name(job)
        try:
            wl = Workload.model_validate(await self.service.get(WORKLOADS, ns, name))
        except NotFound:
            wl = None
        if wl is not None and any(r.uid == job.metadata.uid for r in wl.metadata.owner_references):
            return wl
        if wl is not None or job.spec.suspend or finish_time(job.status) is not None:
            return None  # another job's leftover (the GC removes it), or none wanted
        created = await self.service.create(WORKLOADS, build_workload(job).to_dict(), ns)
        return Workload.model_validate(created)

    async def _settle_workload(
        self, job: TrainJob, workload: Workload | None, decision: Decision
    ) -> None:
        """A finished job's Workload is marked finished (its quota frees); a suspended
        job's is deleted (it queues again when resumed)."""
        if workload is None:
            return
        ns, name = job.metadata.namespace, workload.metadata.name
        finished = finish_time(decision.status)
        if finished is not None and workload.status.phase is not WorkloadPhase.FINISHED:
            done = transitions.finished(
                workload.status, f"trainjob {job.metadata.name} finished", finished
            )
            body = workload.model_copy(update={"status": done}).to_dict()
            await self.service.update(WORKLOADS, body, ns, name, status=True)
        elif finished is None and job.spec.suspend:
            with contextlib.suppress(NotFound):
                await self.service.delete(WORKLOADS, ns, name)

    async def _create_pod(self, job: TrainJob, pod: Pod) -> bool:
        try:
            await self.service.create(PODS, pod.to_dict(), job.metadata.namespace)
        except AlreadyExists:
            return await self._is_ours(job, pod.metadata.name)
        except ApiError as exc:
            await self.recorder.record(
                job, EventType.WARNING, "FailedCreate", f"Error creating pod: {exc.message}"
            )
            raise
        await self.recorder.record(
            job, EventType.NORMAL, "SuccessfulCreate", f"Created pod: {pod.metadata.name}"
        )
        return True

    async def _is_ours(self, job: TrainJob, name: str) -> bool:
        try:
            existing = Pod.model_validate(
                await self.service.get(PODS, job.metadata.namespace, name)
            )
        except NotFound:
            return False
        return any(ref.uid == job.metadata.uid for ref in existing.metadata.owner_references)

    async def _delete_pod(self, job: TrainJob, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self.service.delete(PODS, job.metadata.namespace, name)


def trainjob_controller(ctx: ControllerContext) -> ControllerSpec:
    """The ControllerFactory of the TrainJob controller."""
    root = ctx.home / "checkpoints" if ctx.home is not None else None
    reconciler = TrainJobReconciler(
        ctx.service, ctx.clock, ctx.recorder(COMPONENT), workload_tracking(ctx), root
    )
    return ControllerSpec(
        name=COMPONENT, kind=TRAINJOBS, reconciler=reconciler, owns=(PODS, WORKLOADS, SECRETS)
    )
