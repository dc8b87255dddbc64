"""Everything `cnai k8s install` puts in a cluster, as plain Kubernetes objects.

The operator is cnai's own server (API, controllers, scheduler, gateway, dashboard)
running in one Deployment with the Kubernetes API as its store and the ``kubernetes``
runtime: ``cnai up --store kubernetes --runtime kubernetes``. Its replicas all serve the
API; a Lease elects the one that runs the controllers.

RBAC is least privilege for that job: cnai's own resources; the core objects cnai's
kinds map to (Namespaces, Secrets, Events) and the ones it renders workloads to (Pods,
Services, apps/v1 Deployments); Nodes read-only (mirrored for placement); the Lease
of its election; and, only when they are chosen, Kueue's and Volcano's objects. Two
aggregated ClusterRoles let the cluster's own ``edit`` and ``view`` roles reach cnai's
kinds, so ``kubectl get trainjobs`` works for whoever may already edit a namespace.

With ``runtime="ray"`` the manifests also hold a KubeRay ``RayCluster``
(:mod:`cnai.runtimes.kubernetes.kuberay`), and the operator runs ``cnai up --runtime ray``
against it with the SQLite store, its state on the Deployment's emptyDir (one replica):
operator mode with the Kubernetes store and the Ray runtime is not supported yet. The
CRDs and RBAC are installed all the same, so switching back is an upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cnai.core.config import DEFAULT_PORT
from cnai.core.registry import Registry
from cnai.runtimes.kubernetes.crds import crd_kinds, crds, token_crd
from cnai.runtimes.kubernetes.kuberay import RayClusterOptions, client_address, ray_cluster
from cnai.version import API_GROUP, __version__

DEFAULT_NAMESPACE = "cnai-system"
DEFAULT_IMAGE = f"ghcr.io/cnai-dev/cnai:{__version__}"
NAME = "cnai"
PART_OF = {"app.kubernetes.io/part-of": "cnai"}
SELECTOR = {"app.kubernetes.io/name": "cnai", "app.kubernetes.io/component": "operator"}
ADMISSIONS = ("cnai", "kueue", "volcano")
RUNTIMES = ("kubernetes", "ray")


@dataclass(frozen=True)
class InstallOptions:
    """What `cnai k8s manifests` and `cnai k8s install` render."""

    namespace: str = DEFAULT_NAMESPACE
    image: str = DEFAULT_IMAGE
    replicas: int = 1
    # Who admits gangs: cnai's scheduler, or Kueue / Volcano where the cluster runs them.
    admission: str = "cnai"
    # Kueue's LocalQueue (admission kueue) or Volcano's Queue (admission volcano).
    queue: str = ""
    # The extended resource a fractional GPU request becomes (e.g. HAMi's
    # nvidia.com/gpumem-percentage); empty: fractional GPUs are refused with a reason.
    shared_gpu_resource: str = ""
    image_pull_policy: str = "IfNotPresent"
    # kubernetes: Pods in this cluster; ray: actors on a KubeRay RayCluster installed
    # with cnai (see the module docstring), its nodes running ``ray_image``.
    runtime: str = "kubernetes"
    ray_image: str = ""  # "": the operator's image
    ray_workers: int = 1
    ray_max_workers: int = 0  # 0: as many as ray_workers
    ray_worker_cpu: str = "1"
    ray_worker_memory: str = "2Gi"
    ray_worker_gpus: int = 0

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime: must be one of {', '.join(RUNTIMES)}")
        if self.runtime == "ray":
            self.ray_cluster_options()  # its own checks
            if self.replicas != 1:
                raise ValueError(
                    "replicas: with runtime ray the operator keeps its state in one replica "
                    "(the Kubernetes store with Ray is not supported yet); use 1"
                )
            if self.admission != "cnai":
                raise ValueError("admission: with runtime ray cnai admits; use cnai")
        elif self.ray_image:
            raise ValueError("ray_image: only with runtime ray")
        if self.admission not in ADMISSIONS:
            raise ValueError(f"admission: must be one of {', '.join(ADMISSIONS)}")
        if self.admission == "kueue" and not self.queue:
            raise ValueError("queue: admission kueue needs the name of Kueue's LocalQueue")
        if self.replicas < 1:
            raise ValueError("replicas: must be at least 1")

    def ray_cluster_options(self) -> RayClusterOptions:
        return RayClusterOptions(
            namespace=self.namespace,
            image=self.ray_image or self.image,
            image_pull_policy=self.image_pull_policy,
            workers=self.ray_workers,
            max_workers=self.ray_max_workers,
            worker_cpu=self.ray_worker_cpu,
            worker_memory=self.ray_worker_memory,
            worker_gpus=self.ray_worker_gpus,
            labels=dict(PART_OF),
        )


def _meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**PART_OF, **labels}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


ALL = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
READ = ["get", "list", "watch"]


def operator_rules(registry: Registry, admission: str = "cnai") -> list[dict[str, Any]]:
    """What the operator may do, resource by resource."""
    plurals = sorted([*(info.plural for info in crd_kinds(registry)), "tokens"])
    rules = [
        _rule([API_GROUP], plurals, ALL),
        _rule([API_GROUP], [f"{p}/status" for p in plurals], ["get", "update", "patch"]),
        _rule([API_GROUP], [f"{p}/finalizers" for p in plurals], ["update"]),
        _rule([""], ["namespaces", "namespaces/status"], ALL),
        _rule([""], ["namespaces/finalizers"], ["update"]),
        _rule([""], ["secrets", "events", "pods", "services"], ALL),
        _rule([""], ["pods/log"], ["get"]),
        _rule([""], ["nodes"], READ),
        _rule(["events.k8s.io"], ["events"], ALL),
        _rule(["apps"], ["deployments", "deployments/scale"], ALL),
        _rule(["coordination.k8s.io"], ["leases"], ALL),
    ]
    if admission == "kueue":
        rules.append(_rule(["batch"], ["jobs", "jobs/status"], ALL))
        rules.append(_rule(["kueue.x-k8s.io"], ["workloads", "localqueues"], READ))
    if admission == "volcano":
        rules.append(_rule(["scheduling.volcano.sh"], ["podgroups"], ALL))
    return rules


def _aggregated(registry: Registry, role: str, verbs: list[str]) -> dict[str, Any]:
    plurals = sorted(info.plural for info in crd_kinds(registry))
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(
            f"cnai-aggregate-to-{role}",
            **{f"rbac.authorization.k8s.io/aggregate-to-{role}": "true"},
        ),
        "rules": [_rule([API_GROUP], plurals, verbs)],
    }


def operator_args(options: InstallOptions) -> list[str]:
    """`cnai up`'s arguments in the operator's container."""
    if options.runtime == "ray":  # SQLite on the emptyDir; pods reach cnai's Service
        return [
            "up",
            "--host=0.0.0.0",
            f"--port={DEFAULT_PORT}",
            "--runtime=ray",
            f"--ray-address={client_address(options.ray_cluster_options())}",
            f"--advertise-url=http://{NAME}.{options.namespace}.svc:{DEFAULT_PORT}",
        ]
    args = [
        "up",
        "--store=kubernetes",
        "--runtime=kubernetes",
        "--host=0.0.0.0",
        f"--port={DEFAULT_PORT}",
        f"--admission={options.admission}",
    ]
    if options.queue:
        args.append(f"--queue={options.queue}")
    if options.shared_gpu_resource:
        args.append(f"--shared-gpu-resource={options.shared_gpu_resource}")
    return args


def operator_deployment(options: InstallOptions) -> dict[str, Any]:
    args = operator_args(options)

    def field_env(name: str, path: str) -> dict[str, Any]:
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}

    mounts = [{"name": "home", "mountPath": "/var/lib/cnai"}]
    probe = {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 5}
    container = {
        "name": "cnai",
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "command": ["cnai"],
        "args": args,
        "env": [
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
            {"name": "CNAI_HOME", "value": "/var/lib/cnai"},
            # Pods that name no image (the model server's, the quickstart's) run this one.
            {"name": "CNAI_DEFAULT_IMAGE", "value": options.image},
        ],
        "ports": [{"name": "http", "containerPort": DEFAULT_PORT, "protocol": "TCP"}],
        "readinessProbe": probe,
        "livenessProbe": {
            "httpGet": {"path": "/healthz", "port": "http"},
            "periodSeconds": 10,
            "failureThreshold": 6,
        },
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"memory": "2Gi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    volumes: list[dict[str, Any]] = [{"name": "home", "emptyDir": {}}]
    if options.runtime == "ray":  # the Ray client writes its session files under /tmp
        mounts.append({"name": "tmp", "mountPath": "/tmp"})  # noqa: S108 - an emptyDir
        volumes.append({"name": "tmp", "emptyDir": {}})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(NAME, options.namespace, **SELECTOR),
        "spec": {
            "replicas": options.replicas,
            "selector": {"matchLabels": dict(SELECTOR)},
            "template": {
                "metadata": {"labels": {**PART_OF, **SELECTOR}},
                "spec": {
                    "serviceAccountName": NAME,
                    "securityContext": {
                        "runAsUser": 65532,
                        "runAsGroup": 65532,
                        "fsGroup": 65532,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    # Tracking data and the artifact store; a PVC or an object store
                    # (s3://...) for anything that must outlive the pod.
                    "volumes": volumes,
                },
            },
        },
    }


def install_manifests(registry: Registry, options: InstallOptions | None = None) -> list[Any]:
    """The objects to apply, in the order they must exist."""
    options = options or InstallOptions()
    ns = options.namespace
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns)},
        *crds(registry),
        token_crd(),
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, ns)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta("cnai-operator"),
            "rules": operator_rules(registry, options.admission),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta("cnai-operator"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cnai-operator",
            },
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": ns}],
        },
        _aggregated(registry, "edit", ALL),
        _aggregated(registry, "view", READ),
        *([ray_cluster(options.ray_cluster_options())] if options.runtime == "ray" else []),
        operator_deployment(options),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(NAME, ns, **SELECTOR),
            "spec": {
                "selector": dict(SELECTOR),
                "ports": [{"name": "http", "port": DEFAULT_PORT, "targetPort": "http"}],
            },
        },
    ]
