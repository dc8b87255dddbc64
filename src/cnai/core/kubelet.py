"""The pod controller: binds pods to this node, runs them on the runtime, reports status.

It plays the kubelet's part for the runtime the platform uses, for the runtime's one
node (local processes; a Kubernetes cluster seen as one machine) or, for a
:class:`~cnai.core.runtime.MultiNode` runtime (Ray), for each of its nodes: the
controller is given the set of node names it serves, which the platform keeps current.
One reconcile of a pod:

1. gone: nothing (the orphan sweep removes what the runtime still holds);
2. deleting: stop the process with its grace period; once it has ended, remove the
   runtime's files and release the pod's finalizer;
3. unbound: bind it to the first of its nodes (by name) that is Ready and where its
   requests fit, else keep it Pending with the reason. Only standalone pods arrive
   unbound: a job's pods are created already bound to the node (and GPUs) the
   scheduler placed them on (``cnai.scheduling``), and their requests count in ``fit``
   like any other active pod's;
4. bound and not started: resolve env (Secret values) and limits, launch. Every pod
   also gets ``CNAI_SERVER`` (the platform's URL) and ``CNAI_NAMESPACE`` (its own) unless
   it sets them, as Kubernetes tells every pod where its API server is;
5. started: observe the process and turn what happened into phase, reason and exit code.

Starting and observing are idempotent, so after a restart the same steps adopt
processes that kept running and record the true exit code of those that ended.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Set
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cnai.core.clock import Clock
from cnai.core.controllers.types import ControllerContext, ControllerSpec, Request, Result
from cnai.core.errors import Conflict, NotFound
from cnai.core.events import EventRecorder
from cnai.core.kernel import POD_FINALIZER
from cnai.core.kinds import EventType
from cnai.core.nodes import is_ready
from cnai.core.nodes import sync_node as sync_node  # where callers have imported it from
from cnai.core.pods import Pod, PodPhase
from cnai.core.quantity import parse_quantity
from cnai.core.resources import ResourceService
from cnai.core.runtime import Observation, PodLaunch, ProcessState, Runtime
from cnai.core.store.protocol import Obj

log = logging.getLogger(__name__)

PODS = "pods"
GPU_ANNOTATION = "cnai.io/gpus"
MIN_POLL_S = 0.05  # the soonest a running process is looked at again
# What every pod is told about the platform (cnai.core.config reads the same names).
SERVER_ENV = "CNAI_SERVER"
NAMESPACE_ENV = "CNAI_NAMESPACE"
_TS = "%Y-%m-%dT%H:%M:%SZ"


class LaunchError(Exception):
    """The pod cannot start as specified (e.g. a Secret it references is missing)."""


@dataclass(frozen=True)
class Fit:
    """Whether a pod's requests fit on the node, and if not, why."""

    ok: bool
    reason: str = ""
    message: str = ""
    gpus: tuple[int, ...] = ()


def requests_of(pod: Obj) -> dict[str, Decimal]:
    """A pod's requests as numbers of base units."""
    reqs = ((pod.get("spec") or {}).get("resources") or {}).get("requests") or {}
    return {k: parse_quantity(v) for k, v in reqs.items()}


def fit(pod: Obj, others: list[Obj], allocatable: dict[str, str], gpu_count: int) -> Fit:
    """Pure placement check of ``pod`` against what ``others`` already hold on the node."""
    want = requests_of(pod)
    used: dict[str, Decimal] = {}
    taken_gpus: set[int] = set()
    for other in others:
        for name, qty in requests_of(other).items():
            used[name] = used.get(name, Decimal(0)) + qty
        taken_gpus.update(assigned_gpus(other))
    for name, qty in want.items():
        have = parse_quantity(allocatable.get(name, "0"))
        if used.get(name, Decimal(0)) + qty > have:
            free = have - used.get(name, Decimal(0))
            return Fit(
                False,
                "Unschedulable",
                f"insufficient {name}: requested {qty}, {max(free, Decimal(0))} free of {have}",
            )
    n_gpus = int(want.get("gpu", Decimal(0)))
    free_gpus = [i for i in range(gpu_count) if i not in taken_gpus]
    return Fit(True, gpus=tuple(free_gpus[:n_gpus]))


def assigned_gpus(pod: Obj) -> tuple[int, ...]:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(GPU_ANNOTATION, "")
    return tuple(int(i) for i in text.split(",") if i.strip().isdigit())


def _node_of(pod: Obj) -> str:
    return str((pod.get("spec") or {}).get("nodeName") or "")


def status_from(observation: Observation, current: dict[str, Any], node: str) -> dict[str, Any]:
    """Pure: the pod status that an observation of its process means."""
    status = dict(current)
    status["nodeName"] = node
    if observation.address:  # kept when a later look has none (an ended Kubernetes Pod)
        status["podIP"] = observation.address
    if observation.started_at and not status.get("startTime"):
        status["startTime"] = observation.started_at.strftime(_TS)
    if observation.state is ProcessState.PENDING:
        status.update(
            phase=PodPhase.PENDING.value, reason=observation.reason, message=observation.message
        )
        return status
    if observation.state is ProcessState.RUNNING:
        status.update(phase=PodPhase.RUNNING.value, reason="", message="")
        return status
    code = observation.exit_code
    phase = PodPhase.SUCCEEDED if code == 0 else PodPhase.FAILED
    status.update(
        phase=phase.value,
        reason=observation.reason or ("Completed" if code == 0 else "Error"),
        message=observation.message,
    )
    if code is not None:
        status["exitCode"] = code
    if observation.finished_at:
        status["finishTime"] = observation.finished_at.strftime(_TS)
    return status


class PodReconciler:
    """Drives its nodes' pods through the runtime (see the module docstring).

    ``node_names`` is one name, or a set the caller may change while the controller runs
    (the platform adds a multi-node runtime's nodes as they appear); it is read, never
    copied."""

    def __init__(
        self,
        service: ResourceService,
        runtime: Runtime,
        clock: Clock,
        recorder: EventRecorder,
        node_names: str | Set[str],
        poll_seconds: float = 0.5,
        server_url: str = "",
    ) -> None:
        self.service = service
        self.server_url = server_url
        self.runtime = runtime
        self.clock = clock
        self.recorder = recorder
        self.node_names: Set[str] = {node_names} if isinstance(node_names, str) else node_names
        self.poll_seconds = poll_seconds
        # Binding reads what the node holds, then writes: two binds at once could each
        # see room that only one of them gets.
        self._bind_lock = asyncio.Lock()

    async def reconcile(self, request: Request) -> Result:
        try:
            pod = await self.service.get(PODS, request.namespace, request.name)
        except NotFound:
            return Result()
        meta, spec = pod["metadata"], pod.get("spec") or {}
        status = pod.get("status") or {}
        if meta.get("deletionTimestamp"):
            return await self._finish_deletion(pod)
        node = spec.get("nodeName") or ""
        if node and node not in self.node_names:
            return Result()  # another node's pod
        if PodPhase(status.get("phase", "Pending")).terminal:
            return Result()
        if not node:
            return await self._bind(pod)
        observation = await self.runtime.observe(meta["uid"])
        if observation.state is ProcessState.NOT_FOUND:
            if status.get("phase") == PodPhase.RUNNING:
                return await self._lost(pod)
            return await self._launch(pod)
        return await self._record(pod, observation)

    # -- steps -------------------------------------------------------------------

    async def _bind(self, pod: Obj) -> Result:
        async with self._bind_lock:
            return await self._bind_locked(pod)

    async def _bind_locked(self, pod: Obj) -> Result:
        name, verdict = await self._place(pod)
        if not verdict.ok:
            await self._set_status(
                pod, {"phase": "Pending", "reason": verdict.reason, "message": verdict.message}
            )
            return Result(requeue_after=max(self.poll_seconds * 2, 1.0))
        bound = dict(pod)
        bound["spec"] = dict(pod["spec"], nodeName=name)
        if verdict.gpus:
            meta = dict(pod["metadata"])
            meta["annotations"] = dict(
                meta.get("annotations") or {}, **{GPU_ANNOTATION: ",".join(map(str, verdict.gpus))}
            )
            bound["metadata"] = meta
        try:
            await self.service.update(
                PODS, bound, pod["metadata"]["namespace"], pod["metadata"]["name"]
            )
        except Conflict:
            return Result(requeue_after=0.0)
        await self.recorder.record(pod, EventType.NORMAL, "Scheduled", f"bound to node {name}")
        return Result(requeue_after=0.0)

    async def _place(self, pod: Obj) -> tuple[str, Fit]:
        """The first Ready node (by name) where ``pod`` fits; else why it fits nowhere.
        With one node, its verdict as it is; with several, each node's, named."""
        uid = pod["metadata"]["uid"]
        active = [p for p in await self._active() if p["metadata"]["uid"] != uid]
        misses: list[tuple[str, Fit]] = []
        for name in sorted(self.node_names):
            node = await self._node(name)
            if node is None or not is_ready(node):
                continue
            status = node.get("status") or {}
            others = [p for p in active if (p.get("spec") or {}).get("nodeName") == name]
            gpu_count = len(status.get("gpus") or [])
            verdict = fit(pod, others, status.get("allocatable") or {}, gpu_count)
            if verdict.ok:
                return name, verdict
            misses.append((name, verdict))
        if len(misses) == 1:
            return misses[0]
        why = "; ".join(f"{name}: {verdict.message}" for name, verdict in misses)
        return "", Fit(False, "Unschedulable", why or "no Ready node to run it on")

    async def _launch(self, pod: Obj) -> Result:
        try:
            launch = await self._resolve(pod)
            await self.runtime.launch(launch)  # may refuse a pod it cannot run (LaunchError)
        except LaunchError as exc:
            await self._set_status(
                pod,
                {"phase": "Pending", "reason": "CreateContainerConfigError", "message": str(exc)},
            )
            return Result(requeue_after=2.0)
        what = repr(launch.command[0]) if launch.command else "the image's entrypoint"
        await self.recorder.record(
            pod, EventType.NORMAL, "Started", f"started {what} on {_node_of(pod)}"
        )
        return await self._record(pod, await self.runtime.observe(launch.uid))

    async def _record(self, pod: Obj, observation: Observation) -> Result:
        old = pod.get("status") or {}
        new = status_from(observation, old, _node_of(pod))
        if new != old:
            await self._set_status(pod, new)
            phase = PodPhase(new["phase"])
            if phase.terminal:
                kind = EventType.NORMAL if phase is PodPhase.SUCCEEDED else EventType.WARNING
                await self.recorder.record(
                    pod,
                    kind,
                    new["reason"] or phase.value,
                    f"exited with code {new.get('exitCode')}"
                    + (f": {new['message']}" if new.get("message") else ""),
                )
        if observation.state in (ProcessState.RUNNING, ProcessState.PENDING):
            return Result(requeue_after=self._poll_delay(observation))
        return Result()

    def _poll_delay(self, observation: Observation) -> float:
        """How soon to look at a running process again: a tenth of its age, between
        MIN_POLL_S and ``poll_seconds``. Most short processes (a trial, a quick job) end
        within their first seconds, and are then seen to end within a few tens of
        milliseconds; long ones cost a look every ``poll_seconds``."""
        if observation.started_at is None:
            return self.poll_seconds
        age = (self.clock.now() - observation.started_at).total_seconds()
        return min(max(age / 10, MIN_POLL_S), self.poll_seconds)

    async def _lost(self, pod: Obj) -> Result:
        await self._set_status(
            pod,
            {
                **(pod.get("status") or {}),
                "phase": "Failed",
                "reason": "Lost",
                "message": "the runtime has no record of this pod's process",
            },
        )
        await self.recorder.record(
            pod, EventType.WARNING, "Lost", "the runtime has no record of this pod's process"
        )
        return Result()

    async def _finish_deletion(self, pod: Obj) -> Result:
        meta = pod["metadata"]
        if POD_FINALIZER not in (meta.get("finalizers") or []):
            return Result()
        uid = meta["uid"]
        observation = await self.runtime.observe(uid)
        if observation.state in (ProcessState.RUNNING, ProcessState.PENDING):
            grace = float((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
            await self.runtime.stop(uid, grace)
            await self.recorder.record(
                pod, EventType.NORMAL, "Killing", f"stopping the process (grace period {grace:g}s)"
            )
            return Result(requeue_after=self.poll_seconds)
        await self.runtime.remove(uid)
        released = dict(pod)
        released["metadata"] = dict(
            meta, finalizers=[f for f in meta["finalizers"] if f != POD_FINALIZER]
        )
        try:
            await self.service.update(PODS, released, meta["namespace"], meta["name"])
        except (Conflict, NotFound):
            return Result(requeue_after=0.0)
        return Result()

    # -- helpers -----------------------------------------------------------------

    async def _set_status(self, pod: Obj, status: dict[str, Any]) -> None:
        if status == (pod.get("status") or {}):
            return
        body = dict(pod, status=status)
        await self.service.update(
            PODS, body, pod["metadata"]["namespace"], pod["metadata"]["name"], status=True
        )

    async def _node(self, name: str) -> Obj | None:
        try:
            return await self.service.get("nodes", None, name)
        except NotFound:  # a multi-node runtime's node not written yet
            if len(self.node_names) == 1:
                raise  # one node: the platform wrote it before starting the controller
            return None

    async def _active(self) -> list[Obj]:
        """Pods bound to one of this controller's nodes that have not ended."""
        pods = (await self.service.list(PODS)).items
        return [
            p
            for p in pods
            if (p.get("spec") or {}).get("nodeName") in self.node_names
            and not PodPhase((p.get("status") or {}).get("phase", "Pending")).terminal
        ]

    async def _resolve(self, pod: Obj) -> PodLaunch:
        """Everything the runtime needs, with Secret references turned into values."""
        typed = Pod.model_validate(pod)
        spec, ns = typed.spec, typed.metadata.namespace or "default"
        env: dict[str, str] = {SERVER_ENV: self.server_url} if self.server_url else {}
        env[NAMESPACE_ENV] = ns
        for var in spec.env:
            if var.value is not None:
                env[var.name] = var.value
            elif var.value_from and var.value_from.secret_key_ref:
                ref = var.value_from.secret_key_ref
                value = await self._secret_value(ns, ref.name, ref.key, ref.optional)
                if value is not None:
                    env[var.name] = value
        limits, requests = spec.resources.limits, spec.resources.requests
        memory = limits.get("memory")
        return PodLaunch(
            uid=str(typed.metadata.uid),
            namespace=ns,
            name=typed.metadata.name,
            command=(*spec.command, *spec.args),
            env=env,
            working_dir=spec.working_dir or None,
            memory_limit_bytes=int(parse_quantity(memory)) if memory is not None else None,
            cpu_request=float(parse_quantity(requests.get("cpu", 0))),
            gpu_indices=assigned_gpus(pod),
            grace_seconds=float(spec.termination_grace_period_seconds),
            pod=pod,
        )

    async def _secret_value(self, ns: str, name: str, key: str, optional: bool) -> str | None:
        try:
            secret = await self.service.get("secrets", ns, name)
        except NotFound:
            if optional:
                return None
            raise LaunchError(f"secret {name!r} not found in namespace {ns!r}") from None
        data = secret.get("data") or {}
        if key not in data:
            if optional:
                return None
            raise LaunchError(f"secret {name!r} has no key {key!r}")
        return base64.b64decode(data[key]).decode("utf-8", "replace")


async def sweep_orphans(service: ResourceService, runtime: Runtime) -> list[str]:
    """Stop and forget runtime state whose Pod object no longer exists."""
    live = {p["metadata"]["uid"] for p in (await service.list(PODS)).items}
    removed = []
    for uid in await runtime.known_pods():
        if uid not in live:
            await runtime.remove(uid)
            removed.append(uid)
    return removed


def pod_controller(node_names: str | Set[str], poll_seconds: float = 0.5) -> Any:
    """A ControllerFactory for the pod controller of these nodes (see PodReconciler)."""

    def factory(ctx: ControllerContext) -> ControllerSpec:
        reconciler = PodReconciler(
            ctx.service,
            ctx.runtime,
            ctx.clock,
            ctx.recorder("pod-controller"),
            node_names,
            poll_seconds,
            ctx.server_url,
        )
        return ControllerSpec(name="pod-controller", kind=PODS, reconciler=reconciler, workers=2)

    return factory
