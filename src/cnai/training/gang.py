"""The pods of a TrainJob's gang: names, the torchrun environment contract, the command.

A gang is one start of the job's nodes; ``status.restarts`` numbers it. Pod names are
``<job>-<gang>-<rank>``, so a controller that crashed between creating two pods of a
gang creates the same names again (AlreadyExists, never a duplicate), and the pods of a
new gang never collide with those of the old one, which may still be stopping.

Each node's pod gets torchrun's environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE,
LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, NODE_RANK, TORCHELASTIC_RESTART_COUNT, ...),
so a script written for ``torchrun`` runs unchanged. With ``numProcPerNode`` above 1 the
pod runs ``python -m torch.distributed.run`` (torchrun) with the node's place in the
gang, and torchrun starts the processes and sets their ranks.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cnai.core.kubelet import GPU_ANNOTATION
from cnai.core.meta import ObjectMeta, controller_ref
from cnai.core.pods import EnvVar, Pod, PodSpec
from cnai.scheduling.api import WORKLOAD_ANNOTATION, PodPlacement
from cnai.training.api import (
    GENERATION_LABEL,
    RANK_LABEL,
    TRAINJOB_NAME_LABEL,
    TRAINJOB_UID_LABEL,
    WORLD_ANNOTATION,
    TrainJob,
)

MAX_NAME = 63
PORT_ANNOTATION = "cnai.io/master-port"
# The nodes cnai's scheduler placed the gang's ranks on, in rank order: an engine that
# reserves the whole gang at once (Ray's placement groups) pins each rank there.
GANG_NODES_ANNOTATION = "cnai.io/gang-nodes"
CHECKPOINT_ENV = "CNAI_CHECKPOINT_DIR"
# Locally every node of the gang runs on this machine; the Kubernetes engine points
# MASTER_ADDR at a headless Service of rank 0 instead.
LOCAL_MASTER_ADDR = "127.0.0.1"


def workload_name(job: TrainJob) -> str:
    """``trainjob-<name>``: a Job of the same name has its own Workload."""
    return f"trainjob-{job.metadata.name}"[:253]


def pod_name(job: str, gang: int, rank: int) -> str:
    """``<job>-<gang>-<rank>``, the job part shortened to keep a 63-character name."""
    suffix = f"-{gang}-{rank}"
    return job[: MAX_NAME - len(suffix)].rstrip("-") + suffix


def selector(job: TrainJob) -> str:
    """The label selector of the job's pods (by uid: a new job of the same name is not it)."""
    return f"{TRAINJOB_UID_LABEL}={job.metadata.uid}"


def gang_of(pod: Pod) -> int:
    return int(pod.metadata.labels.get(GENERATION_LABEL, "-1"))


def rank_of(pod: Pod) -> int:
    return int(pod.metadata.labels.get(RANK_LABEL, "-1"))


def world_of(pod: Pod) -> int:
    return int(pod.metadata.annotations.get(WORLD_ANNOTATION, "0"))


def port_of(pods: Iterable[Pod]) -> int | None:
    """The rendezvous port the gang's first pods were given (all share it)."""
    for pod in pods:
        text = pod.metadata.annotations.get(PORT_ANNOTATION, "")
        if text.isdigit():
            return int(text)
    return None


def free_port() -> int:
    """A port free on this machine now, for a new gang's rendezvous (torchrun's way)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL_MASTER_ADDR, 0))
        return int(sock.getsockname()[1])


def checkpoint_dir(root: str, job: TrainJob) -> str:
    """The job's checkpoint directory under ``root``: one per job (by uid), kept across
    its restarts, resizes and resumes."""
    uid = (job.metadata.uid or "")[:8]
    return os.path.join(root, job.metadata.namespace or "default", f"{job.metadata.name}-{uid}")


@dataclass(frozen=True)
class Node:
    """One node of a gang: where it stands and what the platform gives it."""

    rank: int
    world: int  # nodes in the gang
    gang: int
    port: int
    checkpoints: str  # "" for none
    extra_env: Sequence[EnvVar] = ()  # the tracking run and token


def contract_env(job: TrainJob, node: Node) -> list[EnvVar]:
    """torchrun's variables for ``node`` (and cnai's own)."""
    nproc = job.spec.trainer.num_proc_per_node
    values = {
        "MASTER_ADDR": LOCAL_MASTER_ADDR,
        "MASTER_PORT": str(node.port),
        "WORLD_SIZE": str(node.world * nproc),
        "RANK": str(node.rank * nproc),
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": str(nproc),
        "GROUP_RANK": str(node.rank),
        "NODE_RANK": str(node.rank),
        "GROUP_WORLD_SIZE": str(node.world),
        "ROLE_RANK": str(node.rank * nproc),
        "ROLE_WORLD_SIZE": str(node.world * nproc),
        "TORCHELASTIC_RESTART_COUNT": str(node.gang),
        "CNAI_RESTART_COUNT": str(node.gang),  # torchrun overwrites the one above
        "TORCHELASTIC_MAX_RESTARTS": str(job.spec.backoff_limit),
        "TORCHELASTIC_RUN_ID": job.metadata.uid or job.metadata.name,
        "PYTHONUNBUFFERED": "1",
    }
    if node.checkpoints:
        values[CHECKPOINT_ENV] = node.checkpoints
    return [EnvVar(name=k, value=v) for k, v in values.items()]


def _is_python(arg: str) -> bool:
    name = os.path.basename(arg)
    return name.startswith("python") and name.removeprefix("python").replace(".", "").isdigit()


def command(job: TrainJob, node: Node) -> list[str]:
    """The node's command: the trainer's, or torchrun's around it for several processes."""
    trainer = job.spec.trainer
    argv = [*trainer.command, *trainer.args]
    if trainer.num_proc_per_node <= 1:
        return argv
    launcher = [
        "python",
        "-m",
        "torch.distributed.run",
        f"--nnodes={node.world}",
        f"--nproc-per-node={trainer.num_proc_per_node}",
        f"--node-rank={node.rank}",
        f"--master-addr={LOCAL_MASTER_ADDR}",
        f"--master-port={node.port}",
        "--max-restarts=0",  # the platform restarts the gang
    ]
    if argv and (_is_python(argv[0]) or argv[0] == "python"):
        return [*launcher, *argv[1:]]
    return [*launcher, "--no-python", *argv]


def build_pod(
    job: TrainJob, node: Node, slot: PodPlacement | None, gang_nodes: Sequence[str] = ()
) -> Pod:
    """The pod of one node of a gang, bound to its slot of the admitted Workload;
    ``gang_nodes``: every rank's node, when the whole gang is placed at once."""
    trainer = job.spec.trainer
    own = {v.name for v in trainer.env}
    platform = [v for v in (*node.extra_env, *contract_env(job, node)) if v.name not in own]
    meta = ObjectMeta(
        name=pod_name(job.metadata.name, node.gang, node.rank),
        namespace=job.metadata.namespace,
        labels={
            TRAINJOB_NAME_LABEL: job.metadata.name,
            TRAINJOB_UID_LABEL: job.metadata.uid or "",
            GENERATION_LABEL: str(node.gang),
            RANK_LABEL: str(node.rank),
        },
        annotations={WORLD_ANNOTATION: str(node.world), PORT_ANNOTATION: str(node.port)},
        owner_references=[controller_ref(job)],
    )
    spec = PodSpec(
        command=command(job, node),
        env=[*platform, *trainer.env],
        working_dir=trainer.working_dir,
        image=trainer.image,
        resources=trainer.resources_per_node.model_copy(deep=True),
        termination_grace_period_seconds=trainer.termination_grace_period_seconds,
    )
    if slot is not None:
        spec.node_name = slot.node_name
        meta.annotations[WORKLOAD_ANNOTATION] = workload_name(job)
        if slot.gpus:
            meta.annotations[GPU_ANNOTATION] = ",".join(map(str, slot.gpus))
    if gang_nodes:
        meta.annotations[GANG_NODES_ANNOTATION] = ",".join(gang_nodes)
    return Pod(metadata=meta, spec=spec)
