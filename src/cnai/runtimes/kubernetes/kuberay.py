"""A KubeRay ``RayCluster`` for the Ray runtime in a Kubernetes cluster (pure).

``cnai k8s manifests --runtime ray`` adds one to the install manifests: a head group
that runs no pods of its own (``num-cpus: 0``) and one worker group, scaled between
``minReplicas`` and ``maxReplicas`` by KubeRay's autoscaler where it is enabled. The
operator then runs ``cnai up --runtime ray`` against the head's Ray client port, through
the Service KubeRay creates for the head: ``<cluster>-head-svc``.

The fields follow KubeRay's ``ray.io/v1`` API (ray-project/kuberay,
``ray-operator/apis/ray/v1/raycluster_types.go``): ``headGroupSpec`` (``rayStartParams``,
``template``) and ``workerGroupSpecs`` (``groupName``, ``replicas``, ``minReplicas``,
``maxReplicas``, ``rayStartParams``, ``template``). KubeRay itself (its operator and
CRDs) is installed separately, before these manifests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

API_VERSION = "ray.io/v1"
KIND = "RayCluster"
DEFAULT_NAME = "cnai-ray"
CLIENT_PORT = 10001  # Ray client (ray://), KubeRay's default on the head
GCS_PORT = 6379
DASHBOARD_PORT = 8265
WORKER_GROUP = "workers"


@dataclass(frozen=True)
class RayClusterOptions:
    """What the RayCluster is made of: the image every Ray node runs, and the workers."""

    namespace: str
    image: str
    name: str = DEFAULT_NAME
    image_pull_policy: str = "IfNotPresent"
    workers: int = 1  # replicas and minReplicas
    max_workers: int = 0  # 0: as many as ``workers``
    worker_cpu: str = "1"
    worker_memory: str = "2Gi"
    worker_gpus: int = 0
    gpu_resource: str = "nvidia.com/gpu"
    labels: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ValueError("ray_workers: must be at least 0")
        if self.max_workers and self.max_workers < self.workers:
            raise ValueError("ray_max_workers: must be at least --ray-workers")
        if self.worker_gpus < 0:
            raise ValueError("ray_worker_gpus: must be at least 0")


def head_service(options: RayClusterOptions) -> str:
    """The head's Service as KubeRay names it (``GenerateHeadServiceName``)."""
    return f"{options.name}-head-svc"


def client_address(options: RayClusterOptions) -> str:
    """Where cnai reaches the cluster from inside Kubernetes: the head's Ray client port."""
    return f"ray://{head_service(options)}.{options.namespace}.svc:{CLIENT_PORT}"


def _port(name: str, number: int) -> dict[str, Any]:
    return {"name": name, "containerPort": number, "protocol": "TCP"}


def _template(options: RayClusterOptions, container: dict[str, Any]) -> dict[str, Any]:
    labels = dict(options.labels or {})
    container = {"image": options.image, "imagePullPolicy": options.image_pull_policy, **container}
    return {"metadata": {"labels": labels}, "spec": {"containers": [container]}}


def _head(options: RayClusterOptions) -> dict[str, Any]:
    container = {
        "name": "ray-head",
        "ports": [
            _port("gcs-server", GCS_PORT),
            _port("dashboard", DASHBOARD_PORT),
            _port("client", CLIENT_PORT),
        ],
        "resources": {
            "requests": {"cpu": "1", "memory": "2Gi"},
            "limits": {"memory": "2Gi"},
        },
    }
    return {
        # num-cpus 0: the head schedules, the workers run cnai's pods.
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": "0"},  # noqa: S104 - in its pod
        "template": _template(options, container),
    }


def _worker(options: RayClusterOptions) -> dict[str, Any]:
    requests: dict[str, str] = {"cpu": options.worker_cpu, "memory": options.worker_memory}
    limits: dict[str, str] = {"memory": options.worker_memory}
    if options.worker_gpus:
        limits[options.gpu_resource] = str(options.worker_gpus)
    container = {"name": "ray-worker", "resources": {"requests": requests, "limits": limits}}
    return {
        "groupName": WORKER_GROUP,
        "replicas": options.workers,
        "minReplicas": options.workers,
        "maxReplicas": options.max_workers or options.workers,
        "rayStartParams": {},
        "template": _template(options, container),
    }


def ray_cluster(options: RayClusterOptions) -> dict[str, Any]:
    """The RayCluster object (see the module docstring)."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": options.name,
            "namespace": options.namespace,
            "labels": dict(options.labels or {}),
        },
        "spec": {"headGroupSpec": _head(options), "workerGroupSpecs": [_worker(options)]},
    }
