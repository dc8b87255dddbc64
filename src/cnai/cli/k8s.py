"""`cnai k8s`: put cnai into a Kubernetes cluster.

``manifests`` prints what ``install`` applies (CRDs, RBAC, the operator's Deployment and
Service, and with ``--runtime ray`` a KubeRay RayCluster), for review or for GitOps;
``install`` applies it with the official client.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cnai.cli.errors import err_console, fail

if TYPE_CHECKING:
    from cnai.runtimes.kubernetes.manifests import InstallOptions

k8s_app = typer.Typer(help="Run cnai on Kubernetes: manifests and install.", no_args_is_help=True)

Namespace = Annotated[str, typer.Option("--namespace", "-n", help="Namespace of the operator.")]
Image = Annotated[str | None, typer.Option(help="The operator's image (default: this version).")]
Replicas = Annotated[int, typer.Option(min=1, help="Operator replicas (one leads).")]
Admission = Annotated[
    str, typer.Option(help="Who admits gangs: cnai, kueue or volcano (where installed).")
]
Queue = Annotated[
    str, typer.Option(help="Kueue's LocalQueue (with --admission kueue) or Volcano's Queue.")
]
SharedGpu = Annotated[
    str,
    typer.Option(
        help="Extended resource that fractional GPU requests become "
        "(e.g. nvidia.com/gpumem-percentage with HAMi); unset: fractional GPUs are refused.",
    ),
]

Runtime = Annotated[
    str,
    typer.Option(
        help="kubernetes (Pods in this cluster) or ray (actors on a KubeRay RayCluster "
        "installed with cnai; KubeRay must be installed first)."
    ),
]
RayImage = Annotated[
    str, typer.Option(help="With --runtime ray: the Ray nodes' image (default: the operator's).")
]
RayWorkers = Annotated[int, typer.Option(help="With --runtime ray: Ray worker pods (minimum).")]
RayMaxWorkers = Annotated[
    int, typer.Option(help="With --runtime ray: most Ray worker pods (0: as --ray-workers).")
]
RayWorkerCpu = Annotated[str, typer.Option(help="With --runtime ray: CPU of each Ray worker.")]
RayWorkerMemory = Annotated[
    str, typer.Option(help="With --runtime ray: memory of each Ray worker.")
]
RayWorkerGpus = Annotated[int, typer.Option(help="With --runtime ray: GPUs of each Ray worker.")]


@dataclass(frozen=True)
class RayFlags:
    """The --ray-* flags, as given (checked by InstallOptions)."""

    image: str = ""
    workers: int = 1
    max_workers: int = 0
    worker_cpu: str = "1"
    worker_memory: str = "2Gi"
    worker_gpus: int = 0


def register(app: typer.Typer) -> None:
    app.add_typer(k8s_app, name="k8s")


def _options(
    namespace: str,
    image: str | None,
    replicas: int,
    admission: str,
    queue: str,
    shared_gpu: str,
    runtime: str = "kubernetes",
    ray: RayFlags = RayFlags(),
) -> InstallOptions:
    from cnai.core.meta import dns1123_label_error
    from cnai.runtimes.kubernetes.manifests import DEFAULT_IMAGE, InstallOptions

    if err := dns1123_label_error(namespace):
        raise fail(f"--namespace: {err}")
    try:
        return InstallOptions(
            namespace=namespace,
            image=image or DEFAULT_IMAGE,
            replicas=replicas,
            admission=admission,
            queue=queue,
            shared_gpu_resource=shared_gpu,
            runtime=runtime,
            ray_image=ray.image,
            ray_workers=ray.workers,
            ray_max_workers=ray.max_workers,
            ray_worker_cpu=ray.worker_cpu,
            ray_worker_memory=ray.worker_memory,
            ray_worker_gpus=ray.worker_gpus,
        )
    except ValueError as exc:  # "field: rule"
        field, _, rule = str(exc).partition(": ")
        raise fail(f"--{field.replace('_', '-')}: {rule}") from None


def _objects(options: InstallOptions) -> list[Any]:
    from cnai.platform import platform_registry
    from cnai.runtimes.kubernetes.manifests import install_manifests

    return install_manifests(platform_registry(), options)


@k8s_app.command("manifests")
def manifests(
    namespace: Namespace = "cnai-system",
    image: Image = None,
    replicas: Replicas = 1,
    admission: Admission = "cnai",
    queue: Queue = "",
    shared_gpu_resource: SharedGpu = "",
    crds_only: Annotated[bool, typer.Option("--crds-only", help="Only the CRDs.")] = False,
    runtime: Runtime = "kubernetes",
    ray_image: RayImage = "",
    ray_workers: RayWorkers = 1,
    ray_max_workers: RayMaxWorkers = 0,
    ray_worker_cpu: RayWorkerCpu = "1",
    ray_worker_memory: RayWorkerMemory = "2Gi",
    ray_worker_gpus: RayWorkerGpus = 0,
) -> None:
    """Print the CRDs, RBAC and operator Deployment as one YAML stream."""
    from cnai.core.manifests import dump_yaml

    ray = RayFlags(
        ray_image, ray_workers, ray_max_workers, ray_worker_cpu, ray_worker_memory, ray_worker_gpus
    )
    options = _options(
        namespace, image, replicas, admission, queue, shared_gpu_resource, runtime, ray
    )
    objects = _objects(options)
    if crds_only:
        objects = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    typer.echo("---\n".join(dump_yaml(o) for o in objects), nl=False)


@k8s_app.command("install")
def install(
    context: Annotated[str | None, typer.Option(help="kubeconfig context to use.")] = None,
    kubeconfig: Annotated[
        Path | None, typer.Option(help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
    ] = None,
    namespace: Namespace = "cnai-system",
    image: Image = None,
    replicas: Replicas = 1,
    admission: Admission = "cnai",
    queue: Queue = "",
    shared_gpu_resource: SharedGpu = "",
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Ask the API server to check, not persist.")
    ] = False,
    runtime: Runtime = "kubernetes",
    ray_image: RayImage = "",
    ray_workers: RayWorkers = 1,
    ray_max_workers: RayMaxWorkers = 0,
    ray_worker_cpu: RayWorkerCpu = "1",
    ray_worker_memory: RayWorkerMemory = "2Gi",
    ray_worker_gpus: RayWorkerGpus = 0,
) -> None:
    """Apply the manifests to the cluster (server-side apply: re-run it to upgrade)."""
    from cnai.runtimes.kubernetes.install import InstallError, apply, load_client

    ray = RayFlags(
        ray_image, ray_workers, ray_max_workers, ray_worker_cpu, ray_worker_memory, ray_worker_gpus
    )
    options = _options(
        namespace, image, replicas, admission, queue, shared_gpu_resource, runtime, ray
    )
    objects = _objects(options)
    suffix = " (server dry run)" if dry_run else ""
    try:
        client = load_client(str(kubeconfig) if kubeconfig else None, context)
        with client:
            apply(
                client,
                objects,
                dry_run=dry_run,
                on_applied=lambda a: typer.echo(f"{a} applied{suffix}"),
            )
    except InstallError as exc:
        raise fail(str(exc)) from None
    err_console.print(
        f"cnai is installed in namespace {namespace}; reach it with "
        f"`kubectl -n {namespace} port-forward svc/cnai 8470`"
    )
