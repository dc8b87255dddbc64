"""KubernetesRuntime: the Runtime protocol over a Kubernetes cluster.

Each cnai Pod runs as one Kubernetes Pod rendered by :mod:`.render`, found again by its
``cnai.io/pod-uid`` label (so a restarted platform, with nothing in memory, still finds
every pod it started; the label, not the name, identifies it, since a pod of the same
name may still be terminating from an earlier cnai Pod). A TrainJob gang's headless
Service, and with Volcano its PodGroup, is created before its pods.

Kubernetes does what the local runtime's shim does: the kubelet starts the container,
enforces limits and records how it ended. This runtime only translates: the Pod's
status becomes an :class:`Observation` (a pod waiting for a node or an image is
PENDING, with Kubernetes' reason), and the container's terminated state gives the exit
code and reason (Completed, Error, OOMKilled, ...).

Where the Runtime protocol speaks of one machine, :meth:`KubernetesRuntime.node` is the
whole cluster as one node (the sums over its Ready nodes), so cnai's scheduler admits
against the cluster's capacity and the Kubernetes scheduler places each pod; a gang that
fits the sums but no set of nodes waits in PENDING with the scheduler's reason.
:meth:`KubernetesRuntime.nodes` mirrors the Ready nodes one by one.

An InferenceService revision is no set of cnai Pods here but one Deployment and its
Service (:class:`~cnai.core.runtime.ReplicaSets`): cnai's autoscaler sets the
Deployment's replicas, Kubernetes keeps that many Pods, and the controller reaches them
at their Pod IPs (:meth:`KubernetesRuntime.replica_endpoints`).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cnai.core.errors import AlreadyExists, BadRequest, Conflict, NotFound
from cnai.core.kubelet import LaunchError
from cnai.core.quantity import format_bytes, parse_quantity
from cnai.core.runtime import (
    NodeInfo,
    Observation,
    PodLaunch,
    ProcessState,
    ReplicaEndpoint,
    ReplicaSetSpec,
)
from cnai.runtimes.kubernetes.api import ApiResource, KubeApi
from cnai.runtimes.kubernetes.render import (
    CONTAINER,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    POD_UID_LABEL,
    Admission,
    RenderOptions,
    gang_of,
    render_gang_pod_group,
    render_gang_service,
    render_pod,
    render_revision,
    revision_object_name,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
# The node labels of the flavors a pod was admitted in (cnai.scheduling knows them; the
# platform passes a resolver, as runtimes never read the store).
FlavorLabels = Callable[[Obj], Awaitable[Mapping[str, str]]]

PODS = ApiResource("", "v1", "pods", "Pod", namespaced=True, has_status=True)
SERVICES = ApiResource("", "v1", "services", "Service", namespaced=True, has_status=True)
NODES = ApiResource("", "v1", "nodes", "Node", namespaced=False, has_status=True)
DEPLOYMENTS = ApiResource(
    "apps", "v1", "deployments", "Deployment", namespaced=True, has_status=True
)
POD_GROUPS = ApiResource(
    "scheduling.volcano.sh", "v1beta1", "podgroups", "PodGroup", namespaced=True, has_status=True
)
# What cnai last rendered into a Deployment (its spec and labels, a digest): a real
# apiserver fills in defaults, so the live object is never compared with the render.
RENDERED_ANNOTATION = "cnai.io/rendered-hash"
APPLY_ATTEMPTS = 3  # a Deployment another writer changed in between is read again
ENDED_PHASES = ("Succeeded", "Failed")
LOG_RETRY_S = 0.5  # how soon a followed log is tried again while its container starts
IMAGE_ERRORS = frozenset(
    {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
)
# Quantities Kubernetes may report that cnai's parser does not read.
_SUFFIXES = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "P": Decimal(10) ** 15}
_SUFFIXES |= {"E": Decimal(10) ** 18, "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60}


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _units(quantity: str | int) -> Decimal:
    """A quantity as base units, including the suffixes only a cluster reports."""
    try:
        return parse_quantity(quantity)
    except ValueError:
        text = str(quantity)
        for suffix in sorted(_SUFFIXES, key=len, reverse=True):
            if text.endswith(suffix):
                return Decimal(text.removesuffix(suffix)) * _SUFFIXES[suffix]
        try:
            return Decimal(text)  # plain or exponent notation (1e3)
        except InvalidOperation:
            raise ValueError(f"{text!r} is not a Kubernetes quantity") from None


def _cpu(cores: Decimal) -> str:
    return str(int(cores)) if cores == int(cores) else f"{int(cores * 1000)}m"


def _container_status(pod: Obj) -> Obj:
    for status in (pod.get("status") or {}).get("containerStatuses") or ():
        if status.get("name") == CONTAINER:
            return dict(status)
    return {}


def _image_message(pod: Obj, reason: str, message: str) -> str:
    images = [c.get("image", "") for c in (pod.get("spec") or {}).get("containers") or ()]
    image = images[0] if images else ""
    return (
        f"{reason}: cannot pull image {image!r}" + (f" ({message})" if message else "") + "; on "
        "Kubernetes the image is what runs: check its name and tag, that it was pushed, and "
        "that the cluster may pull it (imagePullSecrets)"
    )


def observation_of(pod: Obj | None) -> Observation:
    """Pure: what a Kubernetes Pod's status says about its one container."""
    if pod is None:
        return Observation(ProcessState.NOT_FOUND)
    status = pod.get("status") or {}
    phase = status.get("phase") or "Pending"
    state = _container_status(pod).get("state") or {}
    if "terminated" in state:
        ended = state["terminated"]
        code = int(ended.get("exitCode", 1))
        return Observation(
            ProcessState.EXITED,
            exit_code=code,
            reason=ended.get("reason") or ("Completed" if code == 0 else "Error"),
            message=ended.get("message") or "",
            started_at=_time(ended.get("startedAt")),
            finished_at=_time(ended.get("finishedAt")),
        )
    if phase in ("Succeeded", "Failed"):
        # Ended without a container state: evicted, or never started (node lost).
        return Observation(
            ProcessState.EXITED,
            exit_code=0 if phase == "Succeeded" else None,
            reason=status.get("reason") or ("Completed" if phase == "Succeeded" else "Error"),
            message=status.get("message") or "",
        )
    address = status.get("podIP") or ""  # once the pod has a node and its network
    if "running" in state or phase in ("Running", "Unknown"):
        started = (state.get("running") or {}).get("startedAt") or status.get("startTime")
        return Observation(ProcessState.RUNNING, started_at=_time(started), address=address)
    return replace(_pending(pod, state.get("waiting") or {}), address=address)


def _pending(pod: Obj, waiting: Obj) -> Observation:
    reason, message = waiting.get("reason") or "", waiting.get("message") or ""
    if reason in IMAGE_ERRORS:
        return Observation(
            ProcessState.PENDING, reason=reason, message=_image_message(pod, reason, message)
        )
    if reason:
        return Observation(ProcessState.PENDING, reason=reason, message=message)
    for cond in (pod.get("status") or {}).get("conditions") or ():
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return Observation(
                ProcessState.PENDING,
                reason=cond.get("reason") or "Unschedulable",
                message=cond.get("message") or "",
            )
    return Observation(ProcessState.PENDING)


def node_info(node: Obj, gpu_resource: str) -> NodeInfo:
    """Pure: a Kubernetes Node as cnai sees a machine (cpu, memory, gpu)."""
    status = node.get("status") or {}

    def table(which: str) -> dict[str, str]:
        src = status.get(which) or {}
        out = {
            "cpu": _cpu(_units(src.get("cpu", 0))),
            "memory": format_bytes(int(_units(src.get("memory", 0)))),
        }
        gpus = int(_units(src.get(gpu_resource, 0)))
        if gpus:
            out["gpu"] = str(gpus)
        return out

    meta = node.get("metadata") or {}
    return NodeInfo(
        name=meta.get("name", ""),
        capacity=table("capacity"),
        allocatable=table("allocatable"),
        memory_enforcement="kubelet",
        labels=dict(meta.get("labels") or {}),
    )


def is_ready(node: Obj) -> bool:
    if (node.get("spec") or {}).get("unschedulable"):
        return False
    conditions = (node.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def aggregate(name: str, nodes: list[NodeInfo]) -> NodeInfo:
    """Pure: ``nodes`` as one machine: the sums of their resources, and the labels they
    all share (so a flavor that selects every node still matches)."""

    def total(which: str) -> dict[str, str]:
        sums: dict[str, Decimal] = {}
        for node in nodes:
            for key, value in getattr(node, which).items():
                sums[key] = sums.get(key, Decimal(0)) + parse_quantity(value)
        out = {
            "cpu": _cpu(sums.get("cpu", Decimal(0))),
            "memory": format_bytes(int(sums.get("memory", 0))),
        }
        if sums.get("gpu"):
            out["gpu"] = str(int(sums["gpu"]))
        return out

    shared = dict(nodes[0].labels) if nodes else {}
    for node in nodes[1:]:
        shared = {k: v for k, v in shared.items() if node.labels.get(k) == v}
    shared.pop("kubernetes.io/hostname", None)
    return NodeInfo(
        name=name,
        capacity=total("capacity"),
        allocatable=total("allocatable"),
        memory_enforcement="kubelet",
        labels=shared,
    )


class KubernetesRuntime:
    """cnai Pods as Kubernetes Pods in the cluster ``api`` talks to."""

    name = "kubernetes"

    def __init__(
        self,
        api: KubeApi,
        options: RenderOptions | None = None,
        *,
        node_name: str = "kubernetes",
        flavor_labels: FlavorLabels | None = None,
    ) -> None:
        self.api = api
        self.options = options or RenderOptions()
        self.node_name = node_name
        self.flavor_labels = flavor_labels
        # uid -> (namespace, name): saves a list per look-up; rebuilt by listing.
        self._where: dict[str, tuple[str, str]] = {}

    # -- finding pods ------------------------------------------------------------------

    async def _list(self, selector: str) -> list[Obj]:
        listed = await self.api.list(
            PODS, self.options.namespace or None, {"labelSelector": selector}
        )
        return list(listed.get("items") or ())

    async def _find(self, uid: str) -> Obj | None:
        where = self._where.get(uid)
        if where is not None:
            try:
                pod = await self.api.get(PODS, *where)
            except NotFound:
                pod = None
            if pod is not None and _uid(pod) == uid:
                return pod
            self._where.pop(uid, None)
        for pod in await self._list(f"{POD_UID_LABEL}={uid}"):
            self._remember(pod)
            return pod
        return None

    def _remember(self, pod: Obj) -> None:
        meta = pod.get("metadata") or {}
        self._where[_uid(pod)] = (meta.get("namespace", ""), meta.get("name", ""))

    # -- the protocol -------------------------------------------------------------------

    async def launch(self, pod: PodLaunch) -> None:
        """Render and create the pod (after its gang's objects); a pod already created
        for this uid is left as it is."""
        if pod.pod is None:
            raise LaunchError(
                f"pod {pod.namespace}/{pod.name}: the Kubernetes runtime needs the Pod object"
            )
        if await self._find(pod.uid) is not None:
            return
        flavors = await self.flavor_labels(pod.pod) if self.flavor_labels is not None else None
        body = render_pod(pod.pod, self.options, flavor_labels=flavors, platform_env=pod.env)
        await self._ensure_gang(pod.pod, body)
        try:
            created = await self.api.create(PODS, body)
        except AlreadyExists:
            meta = body["metadata"]
            existing = await self.api.get(PODS, meta["namespace"], meta["name"])
            if _uid(existing) != pod.uid:
                raise LaunchError(
                    f"pod {meta['namespace']}/{meta['name']}: a Kubernetes Pod of that name "
                    "is still there from an earlier pod (terminating); it starts once that is gone"
                ) from None
            created = existing
        self._remember(created)

    async def _ensure_gang(self, pod: Obj, rendered: Obj) -> None:
        gang = gang_of(pod, rendered["metadata"]["namespace"])
        if gang is None:
            return
        objects = [(SERVICES, render_gang_service(gang, self.options))]
        if self.options.admission is Admission.VOLCANO:
            objects.append((POD_GROUPS, render_gang_pod_group(gang, rendered, self.options)))
        for resource, obj in objects:
            with contextlib.suppress(AlreadyExists):  # another rank of the gang made it
                await self.api.create(resource, obj)

    async def stop(self, uid: str, grace_seconds: float) -> None:
        """Delete the pod with ``grace_seconds`` between SIGTERM and SIGKILL; the kubelet
        does the rest, so this returns at once."""
        pod = await self._find(uid)
        if pod is None:
            return
        meta = pod["metadata"]
        options = {"gracePeriodSeconds": max(0, math.ceil(grace_seconds))}
        with contextlib.suppress(NotFound):
            await self.api.delete(PODS, meta["namespace"], meta["name"], options)

    async def observe(self, uid: str) -> Observation:
        return observation_of(await self._find(uid))

    async def known_pods(self) -> list[str]:
        """Uids of every pod this runtime rendered that the cluster still holds."""
        pods = await self._list(f"{MANAGED_BY_LABEL}={MANAGED_BY},{POD_UID_LABEL}")
        for pod in pods:
            self._remember(pod)
        return [_uid(p) for p in pods]

    async def logs(
        self, uid: str, *, follow: bool = False, offset: int = 0
    ) -> AsyncIterator[bytes]:
        """The container's output from byte ``offset`` (Kubernetes counts no bytes, so
        the first ``offset`` are skipped here); with ``follow``, until it ends. A container
        still starting is waited for when following."""
        pod = await self._find(uid)
        while pod is not None:
            meta = pod["metadata"]
            path = PODS.path(meta["namespace"], meta["name"], "log")
            params = {"container": CONTAINER, "follow": "true" if follow else "false"}
            try:
                async for chunk in self.api.stream_bytes(path, params):
                    if offset >= len(chunk):
                        offset -= len(chunk)
                        continue
                    yield chunk[offset:]
                    offset = 0
                return
            except BadRequest:  # "container main is waiting to start"
                if not follow or observation_of(pod).state is not ProcessState.PENDING:
                    return
            await asyncio.sleep(LOG_RETRY_S)
            pod = await self._find(uid)

    async def remove(self, uid: str) -> None:
        """Delete the pod (the cluster keeps its logs no longer than the pod)."""
        pod = await self._find(uid)
        self._where.pop(uid, None)
        if pod is None:
            return
        meta = pod["metadata"]
        with contextlib.suppress(NotFound):
            await self.api.delete(PODS, meta["namespace"], meta["name"])

    async def nodes(self) -> list[NodeInfo]:
        """Every Ready, schedulable node of the cluster, as cnai sees a machine."""
        listed = await self.api.list(NODES)
        ready = [n for n in listed.get("items") or () if is_ready(n)]
        return [node_info(n, self.options.gpu_resource) for n in ready]

    async def node(self) -> NodeInfo:
        """The cluster as one machine named ``node_name`` (see the module docstring)."""
        return aggregate(self.node_name, await self.nodes())

    # -- replica sets: an InferenceService revision's Deployment and Service ---------------

    async def apply_replicas(self, spec: ReplicaSetSpec) -> None:
        """Create the revision's Deployment (``spec.replicas`` pods) and Service, or
        update the Deployment where the render or the count changed; one GET otherwise."""
        flavors = await self.flavor_labels(spec.pod) if self.flavor_labels is not None else None
        deployment, service = render_revision(
            spec.pod,
            self.options,
            replicas=spec.replicas,
            flavor_labels=flavors,
            platform_env=spec.env,
        )
        meta = deployment["metadata"]
        meta.setdefault("annotations", {})[RENDERED_ANNOTATION] = _digest(deployment)
        if await self._apply_deployment(deployment):
            await self._ensure_service(service)

    async def _ensure_service(self, service: Obj) -> None:
        """The revision's Service, created once (looked for whenever the Deployment was
        written, so one lost between the two writes is made the next time)."""
        meta = service["metadata"]
        try:
            await self.api.get(SERVICES, meta["namespace"], meta["name"])
        except NotFound:
            with contextlib.suppress(AlreadyExists):
                await self.api.create(SERVICES, service)

    async def _apply_deployment(self, wanted: Obj) -> bool:
        """Create or replace the Deployment (at the live resourceVersion); whether it
        was written."""
        namespace, name = wanted["metadata"]["namespace"], wanted["metadata"]["name"]
        for _ in range(APPLY_ATTEMPTS):
            try:
                live = await self.api.get(DEPLOYMENTS, namespace, name)
            except NotFound:
                with contextlib.suppress(AlreadyExists):  # made meanwhile: read it
                    await self.api.create(DEPLOYMENTS, wanted)
                    return True
                continue
            if _rendered(live) == _rendered(wanted) and _replicas(live) == _replicas(wanted):
                return False
            body = copy.deepcopy(wanted)
            meta, kept = body["metadata"], live["metadata"].get("annotations") or {}
            meta["resourceVersion"] = live["metadata"]["resourceVersion"]
            # Kubernetes' own (deployment.kubernetes.io/revision) stay; ours are replaced.
            meta["annotations"] = {**kept, **meta.get("annotations", {})}
            with contextlib.suppress(Conflict):  # another writer: read it again
                await self.api.replace(DEPLOYMENTS, body)
                return True
        raise Conflict(f"deployment {namespace}/{name}: changed by another writer meanwhile")

    async def replica_endpoints(self, namespace: str, name: str) -> list[ReplicaEndpoint]:
        """The revision's Pods (by its Deployment's selector) that have not ended, at
        their Pod IPs ("" until assigned) on the model server's port."""
        namespace = self.options.namespace or namespace
        try:
            deployment = await self.api.get(DEPLOYMENTS, namespace, revision_object_name(name))
        except NotFound:
            return []
        match = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if not match:
            return []
        selector = ",".join(f"{k}={v}" for k, v in sorted(match.items()))
        listed = await self.api.list(PODS, namespace, {"labelSelector": selector})
        return [
            _endpoint(pod, self.options.model_server_port)
            for pod in listed.get("items") or ()
            if (pod.get("status") or {}).get("phase") not in ENDED_PHASES
        ]

    async def delete_replicas(self, namespace: str, name: str) -> None:
        """Delete the revision's Deployment (its Pods follow) and Service."""
        namespace = self.options.namespace or namespace
        options = {"propagationPolicy": "Background"}
        for resource in (DEPLOYMENTS, SERVICES):
            with contextlib.suppress(NotFound):
                await self.api.delete(resource, namespace, revision_object_name(name), options)


def _digest(deployment: Obj) -> str:
    """What cnai rendered, less the count (which the autoscaler changes)."""
    spec = {k: v for k, v in deployment["spec"].items() if k != "replicas"}
    labels = deployment["metadata"].get("labels") or {}
    owners = deployment["metadata"].get("ownerReferences") or []
    text = json.dumps([spec, labels, owners], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _rendered(deployment: Obj) -> str:
    annotations = (deployment.get("metadata") or {}).get("annotations") or {}
    return str(annotations.get(RENDERED_ANNOTATION, ""))


def _replicas(deployment: Obj) -> int | None:
    replicas = (deployment.get("spec") or {}).get("replicas")
    return int(replicas) if replicas is not None else None


def _endpoint(pod: Obj, port: int) -> ReplicaEndpoint:
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    return ReplicaEndpoint(
        name=str(meta.get("name", "")),
        address=status.get("podIP") or "",
        port=port,
        running=status.get("phase") == "Running",
        terminating=bool(meta.get("deletionTimestamp")),
    )


def _uid(pod: Obj) -> str:
    return str(((pod.get("metadata") or {}).get("labels") or {}).get(POD_UID_LABEL, ""))
