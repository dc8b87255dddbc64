"""cnai's workloads as Kubernetes objects: pure functions from cnai objects to manifests.

The Kubernetes runtime runs each cnai Pod as one core/v1 Pod with one container,
``main``; a TrainJob gang also gets a headless Service, so every rank reaches rank 0 by
a stable DNS name; an InferenceService revision becomes an apps/v1 Deployment (its
replica count set by cnai's autoscaler) behind a Service. No I/O here, and no
``kubernetes`` import: golden files pin everything these functions write.

The image contract (DESIGN.md, "Code and images"): on a cluster ``image`` is what runs;
a ``workingDir`` must be a path inside the image (or a mounted volume), and a relative
one can only mean the image's own working directory. Secrets stay references: an env
``secretKeyRef`` becomes a Kubernetes ``valueFrom.secretKeyRef`` to the Secret of the
same name (in operator mode cnai's Secrets are core/v1 Secrets), and no resolved value
ever appears in a rendered object.

GPUs: a whole number becomes ``nvidia.com/gpu`` (the NVIDIA device plugin's resource).
A fraction needs a shared-GPU resource the cluster offers, chosen in
:class:`SharedGPU`; without one it is refused with a :class:`RenderError` that says what
to configure, since the device plugin only hands out whole devices.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from cnai.core.kubelet import GPU_ANNOTATION, NAMESPACE_ENV, SERVER_ENV, LaunchError
from cnai.core.meta import label_key_error, label_value_error
from cnai.core.pods import Pod, PodSpec
from cnai.core.quantity import parse_quantity
from cnai.runtimes.kubernetes import kueue, volcano
from cnai.version import GROUP_VERSION

Obj = dict[str, Any]

CONTAINER = "main"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "cnai"
POD_UID_LABEL = "cnai.io/pod-uid"  # finds the Kubernetes Pod of a cnai Pod's uid
GPU_RESOURCE = "nvidia.com/gpu"
MAX_NAME = 63

# The TrainJob gang's labels (cnai.training.api) and pod names (cnai.training.gang):
# runtimes may not import capabilities, so keep these in sync with those modules.
TRAINJOB_NAME_LABEL = "cnai.io/trainjob-name"
TRAINJOB_UID_LABEL = "cnai.io/trainjob-uid"
GENERATION_LABEL = "cnai.io/gang-generation"
RANK_LABEL = "cnai.io/node-rank"
WORLD_ANNOTATION = "cnai.io/num-nodes"
LOCAL_MASTER_ADDR = "127.0.0.1"
MASTER_ADDR_ENV = "MASTER_ADDR"
MASTER_PORT_ENV = "MASTER_PORT"
MASTER_ADDR_FLAGS = ("--master-addr", "--master_addr")
# The InferenceService's labels (cnai.serving.api) and its model server's flags and
# ready path (cnai.serving.server, cnai.serving.controller); keep in sync.
SERVICE_LABEL = "cnai.io/inferenceservice-name"
REVISION_LABEL = "cnai.io/revision-name"
MODEL_SERVER_MODULE = "cnai.serving.server"
MODEL_SERVER_PORT = 8080
MODEL_SERVER_HOST_FLAGS = ("--host",)
LOCAL_HOST = "127.0.0.1"  # where the InferenceService controller's replicas listen
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - a replica in its own Pod serves its Pod IP
MODEL_SERVER_READY_PATH = "/v2/health/ready"
# Annotations that only mean something on the machine of the local runtime.
LOCAL_ANNOTATIONS = (GPU_ANNOTATION, "cnai.io/port")


class RenderError(LaunchError):
    """A cnai object the cluster cannot run as written. The message names the object,
    the field and the rule, and says what to change; the pod controller shows it as the
    pod's Pending reason, as it does for a missing Secret."""

    def __init__(self, what: str, field: str, rule: str) -> None:
        super().__init__(f"{what}: {field}: {rule}")
        self.field = field


class Admission(StrEnum):
    """Who decides when a workload starts. Keep in sync with the operator's
    ``--admission`` (cnai.runtimes.kubernetes.manifests.ADMISSIONS).

    cnai: cnai's own scheduler admitted and placed the pods already; kueue: every pod is
    handed to a Kueue LocalQueue (gangs as Kueue pod groups); volcano: gangs are Volcano
    PodGroups placed all or nothing by the Volcano scheduler.
    """

    CNAI = "cnai"
    KUEUE = "kueue"
    VOLCANO = "volcano"


@dataclass(frozen=True)
class SharedGPU:
    """How a fractional GPU request (``gpu: 500m``) reaches a cluster that shares GPUs.

    Two kinds of sharing exist, and the mode follows from the resource's name
    (:meth:`named`), so one flag (``--shared-gpu-resource``) is enough:

    - percentages (HAMi's vGPUs): one vGPU (``nvidia.com/gpu: 1``) plus the share as a
      percentage of the card, rounded up, in ``resource`` (``nvidia.com/gpumem-percentage``,
      enforced as a memory ceiling) and in ``also_percent`` (``nvidia.com/gpucores``);
    - replicas (the NVIDIA device plugin's time slicing, e.g. ``nvidia.com/gpu.shared``):
      one replica, whatever the fraction, since replicas are unsized time slices with
      no memory or compute isolation.
    """

    resource: str
    percentage: bool = False
    also_percent: tuple[str, ...] = ()
    count_resource: str = GPU_RESOURCE

    @classmethod
    def named(cls, resource: str) -> SharedGPU:
        """The sharing that ``resource`` names: a ``*-percentage`` or ``*/gpucores``
        resource is a percentage, anything else a time-sliced replica."""
        percentage = resource.endswith("-percentage") or resource.endswith("/gpucores")
        return cls(resource=resource, percentage=percentage)

    @classmethod
    def hami(cls, *, cores: bool = True) -> SharedGPU:
        """HAMi's vGPUs: a share of the card's memory and, with ``cores``, of its SMs."""
        also = ("nvidia.com/gpucores",) if cores else ()
        return cls("nvidia.com/gpumem-percentage", percentage=True, also_percent=also)

    @classmethod
    def time_sliced(cls, resource: str = "nvidia.com/gpu.shared") -> SharedGPU:
        """The device plugin's time-sliced replicas (``renameByDefault`` names them
        ``nvidia.com/gpu.shared``)."""
        return cls(resource)

    def limits(self, fraction: Decimal) -> dict[str, str]:
        """The extended resources of one pod asking for ``fraction`` (0 < f < 1) of a GPU."""
        if not self.percentage:
            return {self.resource: "1"}
        percent = str(max(1, math.ceil(fraction * 100)))
        out = {self.count_resource: "1", self.resource: percent}
        out.update({name: percent for name in self.also_percent})
        return out


@dataclass(frozen=True)
class RenderOptions:
    """How this cluster runs cnai's workloads: one value per platform, set at start-up."""

    # "" keeps each object in its cnai namespace (operator mode: they are the same);
    # a name puts every object there (names are kept, so one cnai namespace per cluster
    # namespace).
    namespace: str = ""
    # The image of a pod that names none; "" refuses such pods with a RenderError.
    default_image: str = ""
    image_pull_policy: str = ""  # "" leaves Kubernetes' default
    image_pull_secrets: tuple[str, ...] = ()
    service_account: str = ""
    scheduler_name: str = ""  # "" for the cluster's default scheduler
    shared_gpu: SharedGPU | None = None
    gpu_resource: str = GPU_RESOURCE
    # Copy spec.nodeName: only when cnai's Node objects mirror the cluster's nodes one to
    # one and cnai's scheduler placed the pod on one of them (admission cnai).
    bind_node_name: bool = False
    # Owner references to cnai's objects: right in operator mode, where they are CRs the
    # garbage collector can follow; off when cnai keeps its objects elsewhere.
    owner_references: bool = True
    cluster_domain: str = "cluster.local"
    admission: Admission = Admission.CNAI
    queue: str = ""  # the Kueue LocalQueue, or the Volcano Queue ("" is Volcano's default)
    priority_class: str = ""  # Kueue WorkloadPriorityClass / Volcano PriorityClass
    model_server_port: int = MODEL_SERVER_PORT

    def __post_init__(self) -> None:
        if self.admission is Admission.KUEUE and not self.queue:
            raise ValueError("admission kueue needs the LocalQueue name (queue)")


@dataclass(frozen=True)
class Gang:
    """The TrainJob gang a pod belongs to: the unit of rendezvous and gang scheduling."""

    job: str
    job_uid: str
    generation: int
    rank: int
    size: int
    namespace: str
    port: int | None = None
    owner: Mapping[str, Any] | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """The gang's headless Service, Volcano PodGroup and Kueue pod group."""
        return dns_label(_shorten(self.job, f"-{self.generation}"), letter_first=True)

    def member(self, rank: int) -> str:
        """A member's pod name (cnai.training.gang.pod_name; keep in sync)."""
        return _shorten(self.job, f"-{self.generation}-{rank}")

    def master_host(self, cluster_domain: str) -> str:
        """Rank 0's stable DNS name through the gang's headless Service."""
        host = dns_label(self.member(0))
        return f"{host}.{self.name}.{self.namespace}.svc.{cluster_domain}"

    @property
    def selector(self) -> dict[str, str]:
        return {TRAINJOB_UID_LABEL: self.job_uid, GENERATION_LABEL: str(self.generation)}


def _shorten(base: str, suffix: str) -> str:
    return base[: MAX_NAME - len(suffix)].rstrip("-") + suffix


def dns_label(name: str, *, letter_first: bool = False) -> str:
    """``name`` as a DNS-1123 label (hostnames), or with ``letter_first`` a DNS-1035 label
    (Service names must start with a letter; cnai names may start with a digit)."""
    text = "".join(c if c.isascii() and (c.isalnum() or c == "-") else "-" for c in name.lower())
    if letter_first and not text[:1].isalpha():
        text = "x-" + text
    return text[:MAX_NAME].strip("-") or "x"


def gang_of(pod: Obj, namespace: str = "") -> Gang | None:
    """The gang of a TrainJob pod (by its labels), or None for any other pod."""
    meta = pod.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    needed = (TRAINJOB_NAME_LABEL, TRAINJOB_UID_LABEL, GENERATION_LABEL, RANK_LABEL)
    if not all(k in labels for k in needed):
        return None
    env = {e.get("name"): e.get("value") for e in (pod.get("spec") or {}).get("env") or ()}
    port = str(env.get(MASTER_PORT_ENV) or "")
    rank = int(labels[RANK_LABEL])
    return Gang(
        job=labels[TRAINJOB_NAME_LABEL],
        job_uid=labels[TRAINJOB_UID_LABEL],
        generation=int(labels[GENERATION_LABEL]),
        rank=rank,
        size=int(annotations.get(WORLD_ANNOTATION) or rank + 1),
        namespace=namespace or meta.get("namespace") or "default",
        port=int(port) if port.isdigit() else None,
        owner=_controller(meta),
    )


def _controller(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in meta.get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


# -- pieces ------------------------------------------------------------------------------


def _what(pod: Pod) -> str:
    return f"pod {pod.metadata.namespace or 'default'}/{pod.metadata.name}"


def _typed(pod: Obj) -> Pod:
    try:
        return Pod.model_validate(pod)
    except ValidationError as exc:
        name = (pod.get("metadata") or {}).get("name", "?")
        raise RenderError(f"pod {name}", "spec", f"not a valid cnai Pod: {exc}") from None


def _owner_ref(ref: Mapping[str, Any]) -> Obj:
    return {
        "apiVersion": ref.get("apiVersion") or GROUP_VERSION,
        "kind": ref["kind"],
        "name": ref["name"],
        "uid": ref["uid"],
        "controller": True,
    }


def _labels(own: Mapping[str, str], **ours: str) -> dict[str, str]:
    """The cnai object's labels that are valid on Kubernetes, without the keys cnai and
    the integrations set themselves, and then ours."""
    reserved = (MANAGED_BY_LABEL, POD_UID_LABEL)
    kept = {
        k: v
        for k, v in own.items()
        if k not in reserved
        and not k.startswith("kueue.x-k8s.io/")
        and label_key_error(k) is None
        and label_value_error(v) is None
    }
    return {**kept, MANAGED_BY_LABEL: MANAGED_BY, **ours}


def _annotations(own: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in own.items() if k not in LOCAL_ANNOTATIONS}


def _image(pod: Pod, options: RenderOptions) -> str:
    image = pod.spec.image or options.default_image
    if not image:
        raise RenderError(
            _what(pod),
            "spec.image",
            "required on Kubernetes, where the image is what runs (workingDir code must be "
            "in the image or a volume); name one, or configure a default image",
        )
    return image


def _working_dir(pod: Pod) -> str:
    wd = pod.spec.working_dir
    if wd in ("", ".", "./"):
        return ""  # the image's own WORKDIR
    if not wd.startswith("/"):
        raise RenderError(
            _what(pod),
            "spec.workingDir",
            f"{wd!r} is relative; on Kubernetes it is a path in the image: give an "
            "absolute path, or '.' for the image's working directory",
        )
    return wd


def _env(spec: PodSpec, platform_env: Mapping[str, str], master: str | None) -> list[Obj]:
    own = {v.name for v in spec.env}
    out: list[Obj] = [
        {"name": k, "value": v}
        for k, v in platform_env.items()
        if k in (SERVER_ENV, NAMESPACE_ENV) and k not in own
    ]
    for var in spec.env:
        if var.value_from is not None and var.value_from.secret_key_ref is not None:
            ref = var.value_from.secret_key_ref
            selector: Obj = {"name": ref.name, "key": ref.key}
            if ref.optional:
                selector["optional"] = True
            out.append({"name": var.name, "valueFrom": {"secretKeyRef": selector}})
        elif master is not None and var.name == MASTER_ADDR_ENV and var.value == LOCAL_MASTER_ADDR:
            out.append({"name": var.name, "value": master})
        else:
            out.append({"name": var.name, "value": var.value or ""})
    return out


def _flag_rewritten(argv: list[str], flags: tuple[str, ...], old: str, new: str) -> list[str]:
    """``argv`` with ``new`` for the value ``old`` of any of ``flags`` (``--flag old`` or
    ``--flag=old``); other values, and ``old`` elsewhere, are kept."""
    out: list[str] = []
    for i, arg in enumerate(argv):
        flag, eq, value = arg.partition("=")
        if eq and flag in flags and value == old:
            out.append(f"{flag}={new}")
        elif arg == old and i and argv[i - 1] in flags:
            out.append(new)
        else:
            out.append(arg)
    return out


def _master_args(argv: list[str], master: str | None) -> list[str]:
    """torchrun's ``--master-addr`` pointed at rank 0 instead of this machine."""
    if master is None:
        return list(argv)
    return _flag_rewritten(argv, MASTER_ADDR_FLAGS, LOCAL_MASTER_ADDR, master)


def _runs_model_server(spec: PodSpec) -> bool:
    """Whether the pod runs cnai's model server (``python -m cnai.serving.server``)."""
    argv = [*spec.command, *spec.args]
    return any(
        arg == f"-m{MODEL_SERVER_MODULE}" or (arg == MODEL_SERVER_MODULE and before == "-m")
        for before, arg in zip(["", *argv], argv, strict=False)
    )


def _replica_argv(pod: Pod) -> tuple[list[str], list[str]] | None:
    """A model-server replica's command and args, listening on every interface of its own
    Pod (cnai's gateway reaches it at the Pod's IP) instead of on 127.0.0.1; None for
    any other pod, whose argv is its own."""
    if not _runs_model_server(pod.spec):
        return None

    def listen(argv: list[str]) -> list[str]:
        return _flag_rewritten(argv, MODEL_SERVER_HOST_FLAGS, LOCAL_HOST, ALL_INTERFACES)

    return listen(pod.spec.command), listen(pod.spec.args)


def _gpus(pod: Pod, options: RenderOptions) -> dict[str, str]:
    """The extended resources of the pod's GPU request (limits; requests equal them)."""
    res = pod.spec.resources
    want: dict[str, Decimal] = {}
    for src, table in (("requests", res.requests), ("limits", res.limits)):
        if "gpu" in table:
            want[src] = parse_quantity(table["gpu"])
    if not want:
        return {}
    if len(set(want.values())) > 1:
        raise RenderError(
            _what(pod),
            "spec.resources.limits.gpu",
            "must equal spec.resources.requests.gpu: GPUs are not overcommitted",
        )
    src, amount = next(iter(want.items()))
    where = f"spec.resources.{src}.gpu"
    if amount == 0:
        return {}
    if amount == amount.to_integral_value():
        return {options.gpu_resource: str(int(amount))}
    if amount > 1:
        raise RenderError(
            _what(pod),
            where,
            f"{amount.normalize():f} GPUs: above one GPU only whole GPUs can be requested",
        )
    if options.shared_gpu is None:
        raise RenderError(
            _what(pod),
            where,
            f"{amount.normalize():f} of a GPU needs a shared-GPU resource, and none is "
            "configured: set one (--shared-gpu-resource, e.g. HAMi's "
            "nvidia.com/gpumem-percentage or time-sliced nvidia.com/gpu.shared) if the "
            "cluster offers it, or request a whole GPU",
        )
    return options.shared_gpu.limits(amount)


def _resources(pod: Pod, options: RenderOptions) -> Obj:
    res = pod.spec.resources
    requests = {k: str(v) for k, v in res.requests.items() if k != "gpu"}
    limits = {k: str(v) for k, v in res.limits.items() if k != "gpu"}
    gpus = _gpus(pod, options)
    requests.update(gpus)
    limits.update(gpus)
    out: Obj = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def _container(
    pod: Pod,
    options: RenderOptions,
    *,
    platform_env: Mapping[str, str],
    master: str | None = None,
    argv: tuple[list[str], list[str]] | None = None,
) -> Obj:
    command, args = argv if argv is not None else (pod.spec.command, pod.spec.args)
    container: Obj = {"name": CONTAINER, "image": _image(pod, options)}
    if command:
        container["command"] = _master_args(command, master)
    if args:
        container["args"] = _master_args(args, master)
    env = _env(pod.spec, platform_env, master)
    if env:
        container["env"] = env
    if wd := _working_dir(pod):
        container["workingDir"] = wd
    if resources := _resources(pod, options):
        container["resources"] = resources
    if options.image_pull_policy:
        container["imagePullPolicy"] = options.image_pull_policy
    return container


def _pod_spec(pod: Pod, options: RenderOptions, container: Obj, restart: str) -> Obj:
    spec: Obj = {
        "containers": [container],
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": pod.spec.termination_grace_period_seconds,
        # Otherwise Kubernetes adds <SERVICE>_HOST/_PORT variables for every Service in
        # the namespace, which a program may take for its own (a Service named "master"
        # sets MASTER_PORT to tcp://...), and which differ from the local runtime's env.
        "enableServiceLinks": False,
    }
    if options.scheduler_name:
        spec["schedulerName"] = options.scheduler_name
    if options.service_account:
        spec["serviceAccountName"] = options.service_account
    if options.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": n} for n in options.image_pull_secrets]
    return spec


def _namespace(pod: Pod, options: RenderOptions) -> str:
    return options.namespace or pod.metadata.namespace or "default"


# -- objects -------------------------------------------------------------------------------


def render_pod(
    pod: Obj,
    options: RenderOptions,
    *,
    flavor_labels: Mapping[str, str] | None = None,
    platform_env: Mapping[str, str] | None = None,
) -> Obj:
    """The core/v1 Pod that runs the cnai Pod ``pod`` (a dict as the store holds it).

    ``flavor_labels`` are the node labels of the ResourceFlavor(s) cnai admitted the pod
    in, as a node selector; ``platform_env`` holds what the pod controller tells every
    pod (``CNAI_SERVER``, ``CNAI_NAMESPACE``) unless the pod sets it. A gang member gets
    a stable hostname in its gang's headless Service, and torchrun's MASTER_ADDR (and
    ``--master-addr``) point at rank 0 there instead of at 127.0.0.1. A model-server
    replica's ``--host 127.0.0.1`` becomes 0.0.0.0: it runs in its own Pod, and cnai's
    gateway reaches it at the Pod's IP.
    """
    typed = _typed(pod)
    namespace = _namespace(typed, options)
    gang = gang_of(pod, namespace)
    master = gang.master_host(options.cluster_domain) if gang is not None else None
    container = _container(
        typed, options, platform_env=platform_env or {}, master=master, argv=_replica_argv(typed)
    )
    spec = _pod_spec(typed, options, container, "Never")
    meta: Obj = {
        "name": typed.metadata.name,
        "namespace": namespace,
        "labels": _labels(typed.metadata.labels, **{POD_UID_LABEL: str(typed.metadata.uid)}),
    }
    if annotations := _annotations(typed.metadata.annotations):
        meta["annotations"] = annotations
    if options.owner_references and typed.metadata.uid:
        meta["ownerReferences"] = [
            _owner_ref({"kind": "Pod", "name": typed.metadata.name, "uid": typed.metadata.uid})
        ]
    if gang is not None:
        spec["hostname"] = dns_label(typed.metadata.name)
        spec["subdomain"] = gang.name
    if options.admission is Admission.CNAI and options.bind_node_name and typed.spec.node_name:
        spec["nodeName"] = typed.spec.node_name
    if flavor_labels and options.admission is not Admission.KUEUE:
        spec["nodeSelector"] = dict(sorted(flavor_labels.items()))
    out: Obj = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}
    return _integrate(out, gang, options)


def _integrate(out: Obj, gang: Gang | None, options: RenderOptions) -> Obj:
    """Hand the rendered pod to Kueue or Volcano, as the options say."""
    if options.admission is Admission.KUEUE:
        group = kueue.KueueGroup(gang.name, gang.size) if gang is not None else None
        return kueue.queue_pod(
            out, options.queue, group=group, priority_class=options.priority_class
        )
    if options.admission is Admission.VOLCANO and gang is not None:
        return volcano.join_pod_group(out, gang.name)
    return out


def _gang_meta(gang: Gang, options: RenderOptions) -> Obj:
    meta: Obj = {
        "name": gang.name,
        "namespace": gang.namespace,
        "labels": {
            MANAGED_BY_LABEL: MANAGED_BY,
            TRAINJOB_NAME_LABEL: gang.job,
            **gang.selector,
        },
    }
    if options.owner_references and gang.owner is not None:
        meta["ownerReferences"] = [_owner_ref(gang.owner)]
    return meta


def render_gang_service(gang: Gang, options: RenderOptions) -> Obj:
    """The gang's headless Service: DNS names for its pods (``<pod>.<gang>``), published
    before they are ready, since rank 0 must be reachable while the others start."""
    spec: Obj = {
        "clusterIP": "None",
        "publishNotReadyAddresses": True,
        "selector": gang.selector,
    }
    if gang.port is not None:
        spec["ports"] = [
            {"name": "rendezvous", "port": gang.port, "targetPort": gang.port, "protocol": "TCP"}
        ]
    meta = _gang_meta(gang, options)
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}


def render_gang_pod_group(gang: Gang, member: Obj, options: RenderOptions) -> Obj:
    """The gang's Volcano PodGroup: all ``size`` pods or none, each like ``member`` (a
    rendered pod of the gang; every rank asks for the same resources)."""
    meta = _gang_meta(gang, options)
    return volcano.render_pod_group(
        gang.name,
        gang.namespace,
        min_member=gang.size,
        min_resources=volcano.gang_resources(member, gang.size),
        queue=options.queue,
        priority_class_name=options.priority_class,
        labels=meta["labels"],
        owner_references=meta.get("ownerReferences"),
    )


def _server_argv(argv: list[str], port: int) -> list[str]:
    """The model server listening on every interface at ``port``: locally it listens on
    127.0.0.1 at a free port, behind cnai's gateway on the same machine."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg == "--host":
            out[i + 1] = "0.0.0.0"  # noqa: S104 - a pod serves its Service
        elif arg == "--port":
            out[i + 1] = str(port)
    return out


def revision_object_name(revision: str) -> str:
    """The name of a revision's Deployment and Service (a Service name is a DNS-1035
    label; cnai's names may start with a digit)."""
    return dns_label(revision, letter_first=True)


def render_revision(
    replica: Obj,
    options: RenderOptions,
    *,
    replicas: int,
    flavor_labels: Mapping[str, str] | None = None,
    platform_env: Mapping[str, str] | None = None,
) -> tuple[Obj, Obj]:
    """The Deployment and Service of an InferenceService revision.

    ``replica`` is one replica pod as the InferenceService controller builds it (its
    command runs the model server); ``replicas`` is what cnai's autoscaler decided. The
    Deployment's pods are ready when the model has loaded (the model server's ready
    path); the Service, named after the revision, reaches only ready ones. The model's
    files, like any code, must be in the image or a volume.
    """
    if replicas < 0:
        raise ValueError(f"replicas must not be negative, got {replicas}")
    typed = _typed(replica)
    revision = typed.metadata.labels.get(REVISION_LABEL, "")
    if not revision:
        raise RenderError(_what(typed), f"metadata.labels.{REVISION_LABEL}", "required")
    spec = _pod_spec(typed, options, _server_container(typed, options, platform_env), "Always")
    if flavor_labels and options.admission is not Admission.KUEUE:
        spec["nodeSelector"] = dict(sorted(flavor_labels.items()))
    service_name = typed.metadata.labels.get(SERVICE_LABEL, "")
    selector = {SERVICE_LABEL: service_name, REVISION_LABEL: revision}
    template_meta: Obj = {"labels": _labels(typed.metadata.labels, **selector)}
    if annotations := _annotations(typed.metadata.annotations):
        template_meta["annotations"] = annotations
    meta: Obj = {
        "name": revision_object_name(revision),
        "namespace": _namespace(typed, options),
        "labels": _labels({}, **selector),
    }
    owner = _controller(replica.get("metadata") or {})
    if options.owner_references and owner is not None:
        meta["ownerReferences"] = [_owner_ref(owner)]
    deployment: Obj = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {"metadata": template_meta, "spec": spec},
        },
    }
    if options.admission is Admission.KUEUE:
        deployment = kueue.queue_deployment(
            deployment, options.queue, priority_class=options.priority_class
        )
    return deployment, _revision_service(meta, selector, options.model_server_port)


def _server_container(
    pod: Pod, options: RenderOptions, platform_env: Mapping[str, str] | None
) -> Obj:
    """The model server's container: on the Service's port, ready once the model loaded."""
    port = options.model_server_port
    argv = (_server_argv(pod.spec.command, port), _server_argv(pod.spec.args, port))
    container = _container(pod, options, platform_env=platform_env or {}, argv=argv)
    container["ports"] = [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    container["readinessProbe"] = {
        "httpGet": {"path": MODEL_SERVER_READY_PATH, "port": "http"},
        "periodSeconds": 2,
        "failureThreshold": 3,
    }
    return container


def _revision_service(meta: Obj, selector: dict[str, str], port: int) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": copy.deepcopy(meta),
        "spec": {
            "selector": dict(selector),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
