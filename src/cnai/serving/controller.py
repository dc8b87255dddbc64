"""The InferenceService controller: revisions, replicas through the scheduler, and routes.

One reconcile of an InferenceService (every ``TICK_S``, Knative's autoscaler tick, and on
every change to it, its pods or its Workloads):

1. resolve what a replica runs (:meth:`_template`): a ``models:/`` reference through the
   model registry (the version's artifacts, format and signature), or a path; a change
   makes a new revision (:mod:`cnai.serving.revisions`);
2. probe each running replica's model server (``/v2/models/NAME/ready``, at its pod's
   IP where the runtime reports one, as Kubernetes does, else on 127.0.0.1): ready,
   still loading, or failed to load (its message goes to status);
3. split the traffic between the latest revision and the previous ready one
   (``canaryTrafficPercent``) and ask the autoscaler (:func:`cnai.serving.autoscaler.decide`)
   how many replicas each revision with traffic needs, from the metric windows the
   gateway fills; a revision without traffic drains, then goes to zero;
4. for each revision, a Workload (named after the revision, owned by the service) asks
   the scheduler for its replicas, so they take quota from the service's queue like any
   job; replicas (pods running ``python -m cnai.serving.server``) are started on the
   free slots of its placement and stopped when it shrinks or is evicted;
5. publish the routes to the gateway (:mod:`cnai.serving.state`) and write status.

Where the runtime keeps replica sets of its own (:class:`cnai.core.runtime.ReplicaSets`:
Kubernetes' Deployments), a revision's replicas are one such set instead of cnai Pods:
step 4 sets its count to what the Workload was admitted for (:meth:`_scale_set`), and
steps 2 and 5 see its replicas as the runtime reports them. Everything else, from the
autoscaler to status, is the same for both, over :class:`Instance`.

The controller keeps the autoscaler's state in memory (a restart begins a fresh stable
window, as Knative's does) and everything else in the store.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cnai.core import tracing
from cnai.core.clock import Clock
from cnai.core.controllers.types import ControllerContext, ControllerSpec, Request, Result
from cnai.core.errors import AlreadyExists, ApiError, Conflict, NotFound
from cnai.core.events import EventRecorder
from cnai.core.kinds import EventType
from cnai.core.kubelet import NAMESPACE_ENV, SERVER_ENV
from cnai.core.meta import Condition, ObjectMeta, controller_ref
from cnai.core.pods import Pod, PodPhase, PodSpec
from cnai.core.resources import ResourceService
from cnai.core.runtime import ReplicaEndpoint, ReplicaSets, ReplicaSetSpec
from cnai.scheduling.api import (
    WORKLOAD_ANNOTATION,
    PodPlacement,
    PodSet,
    Workload,
    WorkloadPhase,
    WorkloadSpec,
)
from cnai.scheduling.gate import admission_gate, free_slots
from cnai.serving.api import (
    MODEL_URI,
    REVISION_LABEL,
    SERVICE_LABEL,
    InferenceService,
    InferenceServicePhase,
    InferenceServiceStatus,
    ModelFormat,
    RevisionStatus,
)
from cnai.serving.autoscaler import Decision, ScalerSpec, ScalerState, decide
from cnai.serving.revisions import Revision, revision_name, template_hash, traffic
from cnai.serving.state import SERVING_STATE, Replica, Route, ServingState

log = logging.getLogger("cnai.serving")

SERVICES = "inferenceservices"
PODS = "pods"
WORKLOADS = "workloads"
COMPONENT = "inferenceservice-controller"
TICK_S = 2.0  # how often the autoscaler decides (Knative's tick)
PROBE_TIMEOUT_S = 1.0
RETRY_S = 5.0  # a model that cannot be resolved is looked for again this often
PORT_ANNOTATION = "cnai.io/port"
LOCAL_HOST = "127.0.0.1"  # where a replica listens, and is reached without a pod IP
STILL_LOADING = "still loading"  # the model server's 503 while its model loads
DEFAULT_QUEUE = "default"
POD_SET = "replicas"
SUFFIXES = {
    ".onnx": ModelFormat.ONNX,
    ".pt": ModelFormat.TORCHSCRIPT,
    ".pth": ModelFormat.TORCHSCRIPT,
}


class ModelUnavailable(Exception):
    """The predictor's model cannot be resolved; the message says why."""


@dataclass(frozen=True)
class Instance:
    """One replica as a reconcile sees it, a cnai Pod or a replica of the runtime's own
    set: where its model server answers ("" until known), and whether it runs."""

    name: str
    revision: str
    url: str = ""
    running: bool = False
    terminating: bool = False


class InferenceServiceReconciler:
    """Reconciles one InferenceService at a time."""

    def __init__(
        self,
        service: ResourceService,
        clock: Clock,
        recorder: EventRecorder,
        state: ServingState,
        server_url: str = "",
        monotonic: Callable[[], float] = time.monotonic,
        replica_sets: ReplicaSets | None = None,
    ) -> None:
        self.service = service
        self.clock = clock
        self.recorder = recorder
        self.state = state
        self.server_url = server_url.rstrip("/")
        self.monotonic = monotonic
        self._scalers: dict[tuple[str, str, str], ScalerState] = {}
        # Why the autoscaler last chose a revision's count (for the Rescaled event).
        self._why: dict[tuple[str, str, str], str] = {}
        self._http: httpx.AsyncClient | None = None
        # The runtime's replica sets, where it has them (then replicas are no cnai Pods),
        # and the revisions given one per service, to delete them when it goes.
        self.replica_sets = replica_sets
        self._sets: dict[tuple[str, str], set[str]] = {}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()

    async def reconcile(self, request: Request) -> Result:
        ns = request.namespace or "default"
        try:
            raw = await self.service.get(SERVICES, ns, request.name)
        except NotFound:
            await self._forget(ns, request.name)
            return Result()
        isvc = InferenceService.model_validate(raw)
        if isvc.metadata.deletion_timestamp is not None:
            await self._forget(ns, request.name, (r.name for r in isvc.status.revisions))
            return Result()
        status = isvc.status.model_copy(deep=True)
        status.url = f"{self.server_url}/serving/{ns}/{isvc.metadata.name}"
        status.observed_generation = isvc.metadata.generation
        notes: list[tuple[EventType, str, str]] = []
        # 1. What a replica runs now: a new revision if that changed.
        try:
            template = await self._template(isvc)
        except ModelUnavailable as exc:
            self._set_phase(status, InferenceServicePhase.FAILED, "ModelUnavailable", str(exc))
            await self._write(isvc, status)
            return Result(requeue_after=RETRY_S)
        digest = template_hash(template)
        revisions = list(status.revisions)
        if not revisions or revisions[-1].template_hash != digest:
            name = revision_name(isvc.metadata.name, _next_number(revisions))
            revisions.append(
                RevisionStatus(
                    name=name, model=template["ref"], template_hash=digest, template=template
                )
            )
            notes.append((EventType.NORMAL, "RevisionCreated", f"{name}: {template['ref']}"))
        # 2. Replicas and their readiness.
        pods = await self._pods(isvc) if self.replica_sets is None else []
        seen = await self._instances(isvc, revisions, pods)
        ready, failures = await self._probe(isvc, seen)
        # 3. Traffic, and the replicas each revision needs.
        shares = traffic(
            [Revision(r.name, any(p in ready for p in _names(seen, r.name))) for r in revisions],
            isvc.spec.canary_traffic_percent,
        )
        route = self._route(isvc)
        now = self.monotonic()
        for rev in revisions:
            rev.traffic_percent = shares.get(rev.name, 0)
            rev.ready_replicas = sum(1 for p in _names(seen, rev.name) if p in ready)
            before = rev.replicas
            rev.replicas = self._wanted(isvc, rev, route, now, latest=rev is revisions[-1])
            if rev.replicas != before:
                why = self._why.pop((ns, isvc.metadata.name, rev.name), "")
                notes.append((EventType.NORMAL, "Rescaled", _rescaled(rev, before, why)))
        # 4. Workloads, and pods or the runtime's replica sets.
        for rev in revisions:
            if self.replica_sets is not None:
                mine = [i for i in seen if i.revision == rev.name]
                notes += await self._scale_set(isvc, rev, mine)
            else:
                notes += await self._scale(isvc, rev, [p for p in pods if _revision(p) == rev.name])
        kept = [r for r in revisions if r.traffic_percent or r.replicas or r is revisions[-1]]
        for gone in (r for r in revisions if r not in kept):
            self._scalers.pop((ns, isvc.metadata.name, gone.name), None)
            self._why.pop((ns, isvc.metadata.name, gone.name), None)
            route.revisions.pop(gone.name, None)
            await self._delete_set(ns, isvc.metadata.name, gone.name)
        # 5. Routes for the gateway, then status.
        self._publish(route, kept, seen, ready, shares)
        status.revisions = kept
        status.latest_revision = kept[-1].name
        status.latest_ready_revision = next(
            (r.name for r in reversed(kept) if r.ready_replicas), status.latest_ready_revision
        )
        wanted = sum(r.replicas for r in kept)
        status.replicas_text = f"{sum(r.ready_replicas for r in kept)}/{wanted}"
        serving = [r for r in kept if r.traffic_percent]
        if failures and not any(r.ready_replicas for r in serving):
            self._set_phase(status, InferenceServicePhase.FAILED, "ModelLoadFailed", failures[0])
        elif serving and all(r.ready_replicas or r.replicas == 0 for r in serving):
            self._set_phase(status, InferenceServicePhase.READY, "", "")
        else:
            message = "waiting for a replica of " + (serving[0].name if serving else kept[-1].name)
            self._set_phase(status, InferenceServicePhase.PENDING, "ReplicasNotReady", message)
        await self._write(isvc, status)
        for kind, reason, message in notes:
            await self.recorder.record(isvc, kind, reason, message)
        return Result(requeue_after=TICK_S)

    # -- what a replica runs -----------------------------------------------------------

    async def _template(self, isvc: InferenceService) -> dict[str, Any]:
        """The resolved arguments of a replica's model server (JSON-able, hashed)."""
        predictor = isvc.spec.predictor
        ns = isvc.metadata.namespace or "default"
        signature: Any = None
        fmt = predictor.format
        if MODEL_URI.match(predictor.model):
            from cnai.tracking import registry

            try:
                version = await registry.resolve(self.service, ns, predictor.model)
            except (NotFound, ApiError) as exc:
                raise ModelUnavailable(f"{predictor.model}: {exc}") from None
            path = _local_path(version.spec.source)
            ref = f"models:/{version.spec.model}/{version.spec.version}"
            if fmt is None:
                try:
                    fmt = ModelFormat(version.spec.format.value)
                except ValueError:
                    raise ModelUnavailable(
                        f"{ref}: the model server cannot load format {version.spec.format}"
                    ) from None
            if version.spec.signature is not None:
                signature = version.spec.signature.model_dump(mode="json", by_alias=True)
        else:
            path, ref = _local_path(predictor.model), predictor.model
            fmt = fmt or SUFFIXES.get(Path(path or "").suffix, ModelFormat.SKLEARN)
        if path is None:
            raise ModelUnavailable(f"{predictor.model}: only local (file://) models are served")
        if not Path(path).exists():
            raise ModelUnavailable(f"{ref}: {path} does not exist")
        return {
            "ref": ref,
            "path": path,
            "format": fmt.value,
            "class": predictor.class_name,
            "signature": signature,
            "batching": isvc.spec.batching.model_dump(mode="json", by_alias=True),
            "env": [e.model_dump(mode="json", by_alias=True) for e in predictor.env],
            "resources": predictor.resources.model_dump(mode="json", by_alias=True),
            "image": predictor.image,
        }

    # -- replicas ----------------------------------------------------------------------

    async def _pods(self, isvc: InferenceService) -> list[Pod]:
        listed = await self.service.list(
            PODS, isvc.metadata.namespace, f"{SERVICE_LABEL}={isvc.metadata.name}"
        )
        pods = [Pod.model_validate(o) for o in listed.items]
        return [
            p for p in pods if any(r.uid == isvc.metadata.uid for r in p.metadata.owner_references)
        ]

    async def _instances(
        self, isvc: InferenceService, revisions: list[RevisionStatus], pods: list[Pod]
    ) -> list[Instance]:
        """The replicas: the service's cnai Pods, or the runtime's replicas of each revision."""
        if self.replica_sets is None:
            return [instance_of(p) for p in pods]
        ns = isvc.metadata.namespace or "default"
        return [
            _endpoint_instance(rev.name, e)
            for rev in revisions
            for e in await self.replica_sets.replica_endpoints(ns, rev.name)
        ]

    async def _probe(
        self, isvc: InferenceService, seen: list[Instance]
    ) -> tuple[set[str], list[str]]:
        """Names of the replicas whose model is ready, and why others failed to load."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=PROBE_TIMEOUT_S)
        ready: set[str] = set()
        failures: list[str] = []
        for replica in seen:
            if not replica.running or not replica.url or replica.terminating:
                continue
            url = f"{replica.url}/v2/models/{isvc.metadata.name}/ready"
            try:
                answer = await self._http.get(url)
            except httpx.HTTPError:
                continue  # not listening yet
            if answer.status_code == 200:
                ready.add(replica.name)
            elif answer.status_code == 503:
                with contextlib.suppress(ValueError, AttributeError):
                    message = str(answer.json().get("error", ""))
                    if not message.endswith(STILL_LOADING):  # it failed to load
                        failures.append(f"{replica.name}: {message}")
        return ready, failures

    def _wanted(
        self, isvc: InferenceService, rev: RevisionStatus, route: Route, now: float, latest: bool
    ) -> int:
        """Replicas the revision needs: the autoscaler's answer while it has traffic. The
        latest revision without traffic (not ready yet, or rolled back) keeps
        minReplicas, and one until it is ready; an older one drains: it keeps the
        replicas it has while requests are in flight on them, then none."""
        spec = isvc.spec
        ns, name = isvc.metadata.namespace or "default", isvc.metadata.name
        routed = self.state.revision(
            route, rev.name, spec.scaling.metric, spec.scaling.stable_window_seconds
        )
        if not rev.traffic_percent:
            if latest:
                return max(spec.min_replicas, 0 if rev.ready_replicas else 1)
            return rev.ready_replicas if routed.in_flight() > 0 else 0
        scaler = ScalerSpec(
            metric=spec.scaling.metric,
            target=spec.scaling.target,
            min_replicas=spec.min_replicas,
            max_replicas=spec.max_replicas,
            stable_window_s=spec.scaling.stable_window_seconds,
            scale_to_zero_grace_s=spec.scaling.scale_to_zero_grace_seconds,
        )
        key = (ns, name, rev.name)
        state, decision = decide(
            scaler, self._scalers.get(key, ScalerState()), routed.window, rev.ready_replicas, now
        )
        self._scalers[key] = state
        self._why[key] = _describe(decision)
        return decision.desired

    async def _scale(
        self, isvc: InferenceService, rev: RevisionStatus, pods: list[Pod]
    ) -> list[tuple[EventType, str, str]]:
        """Bring the revision's Workload and pods to ``rev.replicas``."""
        notes: list[tuple[EventType, str, str]] = []
        ns = isvc.metadata.namespace or "default"
        for pod in pods:  # an exited replica is replaced
            if pod.status.phase.terminal and not _terminating(pod):
                await self._delete(PODS, ns, pod.metadata.name)
                notes.append((EventType.WARNING, "ReplicaExited", _exit_note(pod)))
        active = [p for p in pods if not p.status.phase.terminal and not _terminating(p)]
        if rev.replicas == 0:
            for pod in active:
                await self._delete(PODS, ns, pod.metadata.name)
            await self._delete(WORKLOADS, ns, rev.name)
            return notes
        wl = await self._workload(isvc, rev)
        if wl is None:
            return notes
        gate = admission_gate(wl, active)
        if gate.evicted:
            for pod in active:
                await self._delete(PODS, ns, pod.metadata.name)
            notes.append((EventType.WARNING, "Preempted", f"{rev.name}: {gate.message}"))
            return notes
        # Fewer wanted: stop the surplus (not-ready ones and the newest first).
        surplus = sorted(active, key=lambda p: (p.status.phase is PodPhase.RUNNING, _index(p)))
        for pod in surplus[: max(0, len(active) - rev.replicas)]:
            await self._delete(PODS, ns, pod.metadata.name)
            active.remove(pod)
        for slot in free_slots(wl, active)[: max(0, rev.replicas - len(active))]:
            pod = self._build_pod(isvc, rev, slot, _free_index(pods))
            try:
                await self.service.create(PODS, pod.to_dict(), ns)
            except AlreadyExists:
                break  # listed late; the next tick sees it
            pods.append(pod)
            notes.append((EventType.NORMAL, "ReplicaCreated", f"{rev.name}: {pod.metadata.name}"))
        return notes

    async def _scale_set(
        self, isvc: InferenceService, rev: RevisionStatus, seen: list[Instance]
    ) -> list[tuple[EventType, str, str]]:
        """Bring the revision's Workload to ``rev.replicas``, and its replica set to as
        many as the Workload is admitted for: none while it is evicted, and while it
        waits no more than run now (as :meth:`_scale` starts no pod then)."""
        assert self.replica_sets is not None
        ns = isvc.metadata.namespace or "default"
        notes: list[tuple[EventType, str, str]] = []
        count = 0
        if rev.replicas == 0:
            await self._delete(WORKLOADS, ns, rev.name)
        else:
            gate = admission_gate(await self._workload(isvc, rev))
            running = sum(1 for i in seen if not i.terminating)
            if gate.evicted:
                notes.append((EventType.WARNING, "Preempted", f"{rev.name}: {gate.message}"))
            elif gate.admitted:
                count = rev.replicas if gate.count is None else min(rev.replicas, gate.count)
            else:
                count = min(rev.replicas, running)
        template = self._build_pod(isvc, rev, PodPlacement(node_name=""), 0, port=0)
        spec = ReplicaSetSpec(ns, rev.name, template.to_dict(), count, self._platform_env(ns))
        await self.replica_sets.apply_replicas(spec)
        self._sets.setdefault((ns, isvc.metadata.name), set()).add(rev.name)
        return notes

    def _platform_env(self, namespace: str) -> dict[str, str]:
        """What the pod controller tells every pod (cnai.core.kubelet; keep in sync)."""
        env = {SERVER_ENV: self.server_url} if self.server_url else {}
        return {**env, NAMESPACE_ENV: namespace}

    async def _delete_set(self, namespace: str, name: str, revision: str) -> None:
        if self.replica_sets is None:
            return
        await self.replica_sets.delete_replicas(namespace, revision)
        self._sets.get((namespace, name), set()).discard(revision)

    async def _workload(self, isvc: InferenceService, rev: RevisionStatus) -> Workload | None:
        """The revision's Workload asking for ``rev.replicas`` (created or resized)."""
        ns = isvc.metadata.namespace or "default"
        requests = dict(isvc.spec.predictor.resources.requests)
        pod_set = PodSet(name=POD_SET, count=rev.replicas, min_count=1, requests=requests)
        if pod_set.min_count == pod_set.count:
            pod_set.min_count = None
        try:
            wl = Workload.model_validate(await self.service.get(WORKLOADS, ns, rev.name))
        except NotFound:
            body = Workload(
                metadata=ObjectMeta(
                    name=rev.name,
                    namespace=ns,
                    labels={SERVICE_LABEL: isvc.metadata.name, REVISION_LABEL: rev.name},
                    owner_references=[controller_ref(isvc)],
                ),
                spec=WorkloadSpec(
                    queue_name=isvc.spec.queue or DEFAULT_QUEUE,
                    priority_class_name=isvc.spec.priority_class_name,
                    pod_sets=[pod_set],
                ),
            )
            try:
                created = await self.service.create(WORKLOADS, body.to_dict(), ns)
            except AlreadyExists:
                return None
            return Workload.model_validate(created)
        if not any(r.uid == isvc.metadata.uid for r in wl.metadata.owner_references):
            return None  # an older service's, which the garbage collector removes
        if wl.status.phase is WorkloadPhase.FINISHED:
            return None
        have = wl.spec.pod_sets[0] if wl.spec.pod_sets else None
        if have is not None and (have.count, have.min_count) != (pod_set.count, pod_set.min_count):
            resized = wl.model_copy(
                update={"spec": wl.spec.model_copy(update={"pod_sets": [pod_set]})}
            )
            with contextlib.suppress(Conflict):  # the scheduler wrote: the next tick resizes
                wl = Workload.model_validate(
                    await self.service.update(WORKLOADS, resized.to_dict(), ns, rev.name)
                )
        return wl

    def _build_pod(
        self,
        isvc: InferenceService,
        rev: RevisionStatus,
        slot: PodPlacement,
        index: int,
        port: int | None = None,
    ) -> Pod:
        """A replica: on a free port of this machine, unless ``port`` is given (a
        replica set's template, whose runtime chooses the port its replicas serve)."""
        t = rev.template
        port = _free_port() if port is None else port
        args = [
            "python", "-m", "cnai.serving.server",
            "--name", isvc.metadata.name,
            "--model", t["path"],
            "--format", t["format"],
            "--model-version", t["ref"],
            "--host", LOCAL_HOST,
            "--port", str(port),
            "--max-batch-size", str(t["batching"]["maxBatchSize"]),
            "--max-latency-ms", str(t["batching"]["maxLatencyMs"]),
        ]  # fmt: skip
        if t.get("class"):
            args += ["--class", t["class"]]
        if t.get("signature"):
            args += ["--signature", json.dumps(t["signature"])]
        annotations = {PORT_ANNOTATION: str(port), WORKLOAD_ANNOTATION: rev.name}
        return Pod(
            metadata=ObjectMeta(
                name=f"{rev.name}-{index}",
                namespace=isvc.metadata.namespace,
                labels={SERVICE_LABEL: isvc.metadata.name, REVISION_LABEL: rev.name},
                annotations=annotations,
                owner_references=[controller_ref(isvc)],
            ),
            spec=PodSpec.model_validate(
                {
                    "command": args,
                    "env": t["env"] + _tracing_env(isvc, rev.name, t["env"]),
                    "image": t.get("image", ""),
                    "resources": t["resources"],
                    "nodeName": slot.node_name,
                }
            ),
        )

    # -- routes and status -------------------------------------------------------------

    def _route(self, isvc: InferenceService) -> Route:
        key = (isvc.metadata.namespace or "default", isvc.metadata.name)
        route = self.state.routes.get(key)
        if route is None:
            route = self.state.routes[key] = Route(*key)
        route.timeout_s = isvc.spec.request_timeout_seconds
        return route

    def _publish(
        self,
        route: Route,
        revisions: list[RevisionStatus],
        seen: list[Instance],
        ready: set[str],
        shares: dict[str, int],
    ) -> None:
        route.shares = {r.name: s for r, s in ((r, shares.get(r.name, 0)) for r in revisions) if s}
        for rev in revisions:
            routed = route.revisions.get(rev.name)
            if routed is None:
                continue
            now: dict[str, Replica] = {}
            for inst in seen:
                if inst.revision != rev.name or not inst.url or inst.terminating:
                    continue
                # Kept, with its requests in flight; its URL changes when the pod's IP
                # becomes known (a Kubernetes Pod gets one after it was first seen).
                replica = routed.replicas.get(inst.name) or Replica(inst.name, inst.url)
                replica.url = inst.url
                replica.ready = inst.name in ready
                now[inst.name] = replica
            routed.replicas = now
        self.state.changed()

    @staticmethod
    def _set_phase(
        status: InferenceServiceStatus, phase: InferenceServicePhase, reason: str, message: str
    ) -> None:
        ready = phase is InferenceServicePhase.READY
        condition = Condition(
            type="Ready",
            status="True" if ready else "False",
            reason=reason or ("Ready" if ready else phase.value),
            message=message,
        )
        old = next((c for c in status.conditions if c.type == "Ready"), None)
        if old is not None and (old.status, old.reason, old.message) == (
            condition.status,
            condition.reason,
            condition.message,
        ):
            condition = old
        status.conditions = [c for c in status.conditions if c.type != "Ready"] + [condition]
        status.phase, status.reason, status.message = phase, reason, message

    async def _write(self, isvc: InferenceService, status: InferenceServiceStatus) -> None:
        if status == isvc.status:
            return
        body = isvc.model_copy(update={"status": status}).to_dict()
        with contextlib.suppress(Conflict, NotFound):  # looked at again on the next tick
            await self.service.update(
                SERVICES, body, isvc.metadata.namespace, isvc.metadata.name, status=True
            )

    async def _delete(self, plural: str, namespace: str, name: str) -> None:
        with contextlib.suppress(NotFound):
            await self.service.delete(plural, namespace, name)

    async def _forget(self, namespace: str, name: str, revisions: Iterable[str] = ()) -> None:
        """The service is gone: its routes, its scalers and its replica sets (which the
        owner references would remove in a cluster, but not at once, nor without GC)."""
        for revision in sorted({*revisions, *self._sets.pop((namespace, name), set())}):
            await self._delete_set(namespace, name, revision)
        self.state.remove(namespace, name)
        for key in [k for k in self._scalers if k[:2] == (namespace, name)]:
            del self._scalers[key]
        for key in [k for k in self._why if k[:2] == (namespace, name)]:
            del self._why[key]


def _next_number(revisions: list[RevisionStatus]) -> int:
    if not revisions:
        return 1
    tail = revisions[-1].name.rpartition("-")[2]
    return int(tail) + 1 if tail.isdigit() else len(revisions) + 1


def _local_path(uri: str) -> str | None:
    if uri.startswith("file://"):
        return uri.removeprefix("file://")
    if "://" in uri:
        return None
    return uri


def _revision(pod: Pod) -> str:
    return pod.metadata.labels.get(REVISION_LABEL, "")


def _names(seen: list[Instance], revision: str) -> list[str]:
    return [i.name for i in seen if i.revision == revision]


def instance_of(pod: Pod) -> Instance:
    """A replica's cnai Pod as a reconcile sees it."""
    return Instance(
        pod.metadata.name,
        _revision(pod),
        _replica_url(pod),
        running=pod.status.phase is PodPhase.RUNNING,
        terminating=_terminating(pod),
    )


def _endpoint_instance(revision: str, endpoint: ReplicaEndpoint) -> Instance:
    """A replica of the runtime's set: reached at its address once it has one."""
    url = _url(endpoint.address, str(endpoint.port)) if endpoint.address else ""
    return Instance(endpoint.name, revision, url, endpoint.running, endpoint.terminating)


def _replica_url(pod: Pod) -> str:
    """Where a replica's model server answers: its pod's IP where the runtime reports
    one (a Kubernetes Pod), else this machine; "" before it has a port."""
    port = pod.metadata.annotations.get(PORT_ANNOTATION)
    if not port:
        return ""
    return _url(pod.status.pod_ip or LOCAL_HOST, port)


def _url(host: str, port: str) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"  # IPv6


def _terminating(pod: Pod) -> bool:
    return pod.metadata.deletion_timestamp is not None


def _index(pod: Pod) -> int:
    tail = pod.metadata.name.rpartition("-")[2]
    return -int(tail) if tail.isdigit() else 0


def _free_index(pods: list[Pod]) -> int:
    used = {int(t) for p in pods if (t := p.metadata.name.rpartition("-")[2]).isdigit()}
    return next(i for i in range(len(used) + 1) if i not in used)


def _exit_note(pod: Pod) -> str:
    state = pod.status
    return f"{pod.metadata.name} exited ({state.reason or state.phase.value}): {state.message}"


def _free_port() -> int:
    """A port free on 127.0.0.1 now (the replica binds it moments later; if another
    process took it meanwhile the replica exits and is replaced on another port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def inferenceservice_controller(ctx: ControllerContext) -> ControllerSpec:
    """The ControllerFactory of the InferenceService controller."""
    state = ctx.services.setdefault(SERVING_STATE, ServingState())
    assert isinstance(state, ServingState)
    runtime = ctx.runtime
    reconciler = InferenceServiceReconciler(
        ctx.service,
        ctx.clock,
        ctx.recorder(COMPONENT),
        state,
        ctx.server_url,
        replica_sets=runtime if isinstance(runtime, ReplicaSets) else None,
    )

    def activations(enqueue: Callable[[Request], None]) -> None:
        state.wake = lambda namespace, name: enqueue(Request(namespace, name))

    return ControllerSpec(
        name=COMPONENT,
        kind=SERVICES,
        reconciler=reconciler,
        owns=(PODS, WORKLOADS),
        sources=(activations,),
    )


def _tracing_env(
    isvc: InferenceService, revision: str, given: list[dict[str, Any]]
) -> list[dict[str, str]]:
    """Where the platform traces, the OTEL_* settings it runs with, for the model server
    to export its spans to the same collector (named per revision; a variable the
    predictor sets itself wins). Not in the revision's template: the platform's
    environment changing is no new revision."""
    if not tracing.enabled():
        return []
    ns = isvc.metadata.namespace or "default"
    found = {k: v for k, v in os.environ.items() if k.startswith("OTEL_")}
    found["OTEL_SERVICE_NAME"] = "cnai-model-server"
    resource = f"cnai.namespace={ns},cnai.inferenceservice={isvc.metadata.name}"
    resource += f",cnai.revision={revision}"
    if found.get("OTEL_RESOURCE_ATTRIBUTES"):
        resource = found["OTEL_RESOURCE_ATTRIBUTES"] + "," + resource
    found["OTEL_RESOURCE_ATTRIBUTES"] = resource
    taken = {e.get("name") for e in given}
    return [{"name": k, "value": v} for k, v in sorted(found.items()) if k not in taken]


def _describe(decision: Decision) -> str:
    """Why the autoscaler chose its count, for the Rescaled event."""
    window = f"panic window {decision.panic:.3g}" if decision.panicking else None
    window = window or f"stable window {decision.stable:.3g}"
    return f"{decision.reason.value}, {window}"


def _rescaled(rev: RevisionStatus, before: int, why: str) -> str:
    text = f"{rev.name}: {before} -> {rev.replicas} replicas"
    if why:
        return f"{text} ({why})"
    if not rev.traffic_percent:
        return f"{text} (no traffic share: draining or starting)"
    return text
