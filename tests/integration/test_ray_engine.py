"""The Ray engine's acceptance tests on a real Ray cluster: `cnai up --runtime ray`.

One local Ray cluster for the module (2 nodes, 1 CPU each: the head and a worker) and one
platform on it, started with ``--runtime ray --ray-address <GCS address>``; both are torn
down at the end. The tests run in order, and the last one removes the worker node:

1. the DDP example (``examples/digits/train.py``, torch.distributed gloo) runs with 2
   workers, one per Ray node, with the env contract of the local runtime;
2. a gang that does not fit (3 x 1 CPU) never starts any member;
3. losing a Ray node fails its member with ``NodeLost`` and restarts the TrainJob's gang
   as its backoffLimit allows; the restarted gang finishes on a node added back.

The test process never connects to Ray (no ``ray.init``): it sees the cluster through the
platform's API, as a user would. ``pytest -m ray`` selects this module.
"""

from __future__ import annotations

import contextlib
import gc
import re
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import RunningPlatform, start_platform, unique, wait_until

from cnai import Client
from cnai.core.errors import NotFound
from cnai.core.kinds import Namespace
from cnai.core.pods import Node, Pod, PodPhase
from cnai.training.api import TrainJob, TrainJobPhase

pytestmark = [pytest.mark.integration, pytest.mark.ray]

REPO = Path(__file__).resolve().parents[2]
STEPS = str(Path(__file__).resolve().parent / "trainers" / "steps.py")
OBJECT_STORE_BYTES = 80 * 1024 * 1024
NODE_ARGS: dict[str, Any] = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES}
WAIT_S = 60.0


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """A head and one worker, 1 CPU each; the worker is ``cluster.worker``."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # Ray's log files, left to the GC
        cluster: Any = Cluster(  # Any: ray.cluster_utils is untyped; .worker is ours
            initialize_head=True, head_node_args={**NODE_ARGS, "include_dashboard": False}
        )
        gc.collect()
    try:
        cluster.worker = cluster.add_node(**NODE_ARGS)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


@pytest.fixture(scope="module")
def ray_platform(
    ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningPlatform]:
    home = tmp_path_factory.mktemp("cnai-ray-home")
    args = ["--runtime", "ray", "--ray-address", ray_cluster.address]
    running = start_platform(home, extra_args=args, timeout=90)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(ray_platform: RunningPlatform) -> Iterator[Client]:
    with ray_platform.client() as c:
        yield c


@pytest.fixture
def namespace(client: Client) -> Iterator[str]:
    """A namespace of the test's own; its TrainJobs are deleted at the end."""
    name = unique("ns")
    client.create(Namespace.new(name))
    yield name
    for job in client.list(TrainJob, name).items:
        with contextlib.suppress(NotFound):
            client.delete(TrainJob, job.metadata.name, name)


def trainjob(name: str, namespace: str, command: list[str], **spec: Any) -> dict[str, Any]:
    trainer = {
        "numNodes": 2,
        "command": command,
        "resourcesPerNode": {"requests": {"cpu": "1"}},
        "terminationGracePeriodSeconds": 5,
        **spec.pop("trainer", {}),
    }
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "TrainJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"trainer": trainer, **spec},
    }


def _job(client: Client, name: str, ns: str) -> TrainJob:
    return client.get(TrainJob, name, ns)


def _pod(client: Client, name: str, ns: str) -> Pod | None:
    try:
        return client.get(Pod, name, ns)
    except NotFound:
        return None


def _logs(client: Client, pod: str, ns: str) -> str:
    try:
        return b"".join(client.logs(pod, ns)).decode("utf-8", "replace")
    except NotFound:
        return ""


def _ray_nodes(client: Client) -> dict[str, Node]:
    return {n.metadata.name: n for n in client.list(Node).items if n.status.runtime == "ray"}


def _ready(node: Node) -> tuple[str, str]:
    found = next(c for c in node.status.conditions if c.type == "Ready")
    return found.status, found.reason


def node_name(node_id: str) -> str:
    """The cnai Node of a Ray node (keep in sync with cnai.runtimes.ray.placement)."""
    return "ray-" + node_id.lower()[:12]


# -- 1. the DDP example, one worker per Ray node -----------------------------------------


@pytest.mark.timeout(150)
def test_ddp_digits_runs_one_worker_per_ray_node_with_the_env_contract(
    ray_cluster: Any, client: Client, namespace: str
) -> None:
    nodes = _ray_nodes(client)
    assert sorted(nodes) == sorted(node_name(n.node_id) for n in ray_cluster.list_all_nodes())
    assert all(n.status.capacity["cpu"] == "1" for n in nodes.values())

    # As examples/quickstart/30-trainjob.yaml, without --register (no model registry
    # here) and with 2 epochs; each member first prints the env contract it was given.
    train = f"{sys.executable} examples/digits/train.py --epochs 2"
    echo = "echo contract rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT"
    name = unique("digits")
    client.create(
        trainjob(
            name,
            namespace,
            ["sh", "-c", f"{echo} && exec {train}"],
            trainer={"workingDir": str(REPO)},
            backoffLimit=0,
        )
    )

    wait_until(lambda: _job(client, name, namespace).status.phase.terminal, 120, f"{name} ends")
    job = _job(client, name, namespace)
    rank0, rank1 = (_logs(client, f"{name}-0-{r}", namespace) for r in (0, 1))
    assert job.status.phase is TrainJobPhase.SUCCEEDED, (job.status.message, rank0, rank1)
    assert [(r.rank, r.phase, r.exit_code) for r in job.status.replicas] == [
        (0, PodPhase.SUCCEEDED, 0),
        (1, PodPhase.SUCCEEDED, 0),
    ]
    placed = [client.get(Pod, f"{name}-0-{r}", namespace).status.node_name for r in (0, 1)]
    assert set(placed) == set(nodes), placed  # one member on each Ray node
    master = re.search(r"master=(\S+)", rank0)
    assert master is not None, rank0
    assert master.group(1) != ":", rank0
    assert f"contract rank=0 world=2 master={master.group(1)}" in rank0
    assert f"contract rank=1 world=2 master={master.group(1)}" in rank1
    assert "epoch 2 " in rank0
    assert "world 2 restart 0" in rank0
    assert float(re.findall(r"test accuracy (\S+)", rank0)[-1]) > 0.5


# -- 2. a gang that does not fit never starts --------------------------------------------


@pytest.mark.timeout(60)
def test_a_gang_larger_than_the_cluster_starts_no_member(client: Client, namespace: str) -> None:
    name = unique("toobig")
    client.create(trainjob(name, namespace, [sys.executable, STEPS], trainer={"numNodes": 3}))

    deadline = time.monotonic() + 8  # longer than a Node refresh and a scheduling pass
    while time.monotonic() < deadline:
        job = _job(client, name, namespace)
        assert job.status.phase is TrainJobPhase.PENDING, job.status
        for rank in range(3):
            pod = _pod(client, f"{name}-0-{rank}", namespace)
            if pod is not None:
                assert pod.status.phase is PodPhase.PENDING, pod.status
                assert pod.status.start_time is None, pod.status
                assert _logs(client, pod.metadata.name, namespace) == ""
        time.sleep(0.5)

    client.delete(TrainJob, name, namespace)
    wait_until(lambda: not client.list(Pod, namespace).items, 30, "the gang's pods deleted")


# -- 3. a lost Ray node: NodeLost, and the gang restarts ---------------------------------


def _lost_members(client: Client, name: str, ns: str) -> list[Pod]:
    """The generation-0 members that failed with NodeLost."""
    pods = (_pod(client, f"{name}-0-{r}", ns) for r in (0, 1))
    return [p for p in pods if p is not None and p.status.reason == "NodeLost"]


@pytest.mark.timeout(120)
def test_losing_a_ray_node_fails_its_member_with_node_lost_and_restarts_the_gang(
    ray_cluster: Any, client: Client, namespace: str
) -> None:
    name = unique("lost")
    # 120 steps of 0.2 s: long enough to lose a node in the middle; rank 0 checkpoints.
    args = [sys.executable, STEPS, "--steps", "120", "--step-seconds", "0.2"]
    client.create(trainjob(name, namespace, args, backoffLimit=1))
    wait_until(
        lambda: (
            "step 3\n" in _logs(client, f"{name}-0-0", namespace)
            and "step 3\n" in _logs(client, f"{name}-0-1", namespace)
        ),
        WAIT_S,
        "both members running",
    )
    lost = node_name(ray_cluster.worker.node_id)
    placed = {client.get(Pod, f"{name}-0-{r}", namespace).status.node_name for r in (0, 1)}
    assert placed == set(_ray_nodes(client)), placed

    ray_cluster.remove_node(ray_cluster.worker)

    # The member that Ray ran on the lost node fails with NodeLost, naming it. (It is found
    # by its reason: a gang member's status.nodeName is cnai's slot, and Ray's placement
    # group may put that rank's bundle on the other node.)
    wait_until(lambda: bool(_lost_members(client, name, namespace)), WAIT_S, "a member lost")
    (victim,) = _lost_members(client, name, namespace)
    assert victim.status.phase is PodPhase.FAILED, victim.status
    assert victim.status.exit_code is None, victim.status
    assert f"Ray node {lost} (" in victim.status.message, victim.status.message
    other = _pod(client, f"{name}-0-{1 - int(victim.metadata.name[-1])}", namespace)
    assert other is None or other.status.reason != "NodeLost", other.status  # not lost
    wait_until(lambda: _job(client, name, namespace).status.restarts == 1, WAIT_S, "a restart")
    job = _job(client, name, namespace)
    assert (job.status.restarts, job.status.failures) == (1, 1), job.status
    assert job.status.phase is not TrainJobPhase.FAILED, job.status
    wait_until(
        lambda: _ready(_ray_nodes(client)[lost]) == ("False", "NodeLost"), 15, f"{lost} lost"
    )
    assert _ray_nodes(client)[lost].spec.unschedulable

    # A node joins: the new gang (generation 1) runs on it and the head, from the checkpoint.
    ray_cluster.worker = ray_cluster.add_node(**NODE_ARGS)
    wait_until(lambda: _job(client, name, namespace).status.phase.terminal, 90, f"{name} ends")
    job = _job(client, name, namespace)
    resumed = _logs(client, f"{name}-1-0", namespace)
    assert job.status.phase is TrainJobPhase.SUCCEEDED, (job.status, resumed)
    first = re.search(r"start step=(\d+) world=2 rank=0 restart=1", resumed)
    assert first is not None, resumed
    assert int(first.group(1)) >= 3, resumed  # resumed from rank 0's checkpoint
