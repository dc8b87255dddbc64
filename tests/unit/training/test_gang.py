"""The pods of a gang, pure: names, torchrun's environment contract, the command."""

from __future__ import annotations

import pytest

from cnai.core.kubelet import GPU_ANNOTATION
from cnai.core.pods import EnvVar
from cnai.scheduling.api import WORKLOAD_ANNOTATION, PodPlacement
from cnai.training.api import (
    GENERATION_LABEL,
    RANK_LABEL,
    TRAINJOB_NAME_LABEL,
    TRAINJOB_UID_LABEL,
    WORLD_ANNOTATION,
)
from cnai.training.controller import workload_name
from cnai.training.gang import (
    PORT_ANNOTATION,
    Node,
    build_pod,
    checkpoint_dir,
    command,
    gang_of,
    pod_name,
    port_of,
    rank_of,
    selector,
    world_of,
)

from .conftest import make_trainjob

UID = "0123abcd-4567-89ef"


def env_of(env: list[EnvVar]) -> dict[str, str | None]:
    return {v.name: v.value for v in env}


def node(rank: int, world: int = 2, gang: int = 0, extra_env: tuple[EnvVar, ...] = ()) -> Node:
    return Node(rank, world, gang, port=29500, checkpoints="/ckpt/j", extra_env=extra_env)


@pytest.mark.parametrize(
    ("rank", "expected"),
    [
        pytest.param(
            0,
            {"RANK": "0", "GROUP_RANK": "0", "NODE_RANK": "0", "ROLE_RANK": "0"},
            id="rank-0",
        ),
        pytest.param(
            1,
            {"RANK": "1", "GROUP_RANK": "1", "NODE_RANK": "1", "ROLE_RANK": "1"},
            id="rank-1",
        ),
    ],
)
def test_a_2_node_gang_gets_torchruns_environment(rank: int, expected: dict[str, str]) -> None:
    job = make_trainjob("j").nodes(2).backoff_limit(5).typed(uid=UID)
    pod = build_pod(job, node(rank, gang=3), None)
    env = env_of(pod.spec.env)
    assert env == {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29500",
        "WORLD_SIZE": "2",
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": "1",
        "GROUP_WORLD_SIZE": "2",
        "ROLE_WORLD_SIZE": "2",
        "TORCHELASTIC_RESTART_COUNT": "3",
        "CNAI_RESTART_COUNT": "3",
        "TORCHELASTIC_MAX_RESTARTS": "5",
        "TORCHELASTIC_RUN_ID": UID,
        "PYTHONUNBUFFERED": "1",
        "CNAI_CHECKPOINT_DIR": "/ckpt/j",
        **expected,
    }
    assert pod.spec.command == ["python", "train.py"]  # one process: the trainer's own


def test_no_checkpoint_dir_means_no_variable() -> None:
    job = make_trainjob("j").typed()
    pod = build_pod(job, Node(rank=0, world=1, gang=0, port=1, checkpoints=""), None)
    assert "CNAI_CHECKPOINT_DIR" not in env_of(pod.spec.env)


def test_several_processes_per_node_multiply_the_world_and_run_under_torchrun() -> None:
    job = make_trainjob("j").nodes(2).procs(4).trainer(args=["--lr", "0.1"]).typed()
    pod = build_pod(job, node(1), None)
    env = env_of(pod.spec.env)
    assert (env["WORLD_SIZE"], env["RANK"], env["LOCAL_WORLD_SIZE"]) == ("8", "4", "4")
    assert (env["GROUP_RANK"], env["NODE_RANK"], env["GROUP_WORLD_SIZE"]) == ("1", "1", "2")
    assert pod.spec.command == [
        "python",
        "-m",
        "torch.distributed.run",
        "--nnodes=2",
        "--nproc-per-node=4",
        "--node-rank=1",
        "--master-addr=127.0.0.1",
        "--master-port=29500",
        "--max-restarts=0",
        "train.py",
        "--lr",
        "0.1",
    ]


@pytest.mark.parametrize(
    ("argv", "tail"),
    [
        pytest.param(["python", "train.py"], ["train.py"], id="python-stripped"),
        pytest.param(["python3", "train.py"], ["train.py"], id="python3-stripped"),
        pytest.param(["/usr/bin/python3.11", "t.py"], ["t.py"], id="versioned-path-stripped"),
        pytest.param(["./train.sh", "x"], ["--no-python", "./train.sh", "x"], id="script"),
        pytest.param(["pythonic", "x"], ["--no-python", "pythonic", "x"], id="not-a-python"),
    ],
)
def test_torchrun_wraps_the_command(argv: list[str], tail: list[str]) -> None:
    job = make_trainjob("j").nodes(2).procs(2).trainer(command=argv).typed()
    got = command(job, node(0))
    assert got[:3] == ["python", "-m", "torch.distributed.run"]
    assert "--nnodes=2" in got
    assert "--nproc-per-node=2" in got
    assert "--node-rank=0" in got
    assert "--master-port=29500" in got
    assert got[9:] == tail


def test_the_trainers_own_env_wins_over_the_platforms() -> None:
    job = make_trainjob("j").nodes(2).env(MASTER_PORT="1234", LR="0.1").typed()
    extra = (EnvVar(name="CNAI_RUN_ID", value="run-1"), EnvVar(name="LR", value="platform"))
    pod = build_pod(job, node(0, extra_env=extra), None)
    names = [v.name for v in pod.spec.env]
    assert len(names) == len(set(names))  # no variable twice
    env = env_of(pod.spec.env)
    assert (env["MASTER_PORT"], env["LR"], env["CNAI_RUN_ID"]) == ("1234", "0.1", "run-1")
    assert names[-2:] == ["MASTER_PORT", "LR"]  # the trainer's, last


@pytest.mark.parametrize(
    ("job", "gang", "rank", "expected"),
    [
        pytest.param("train", 0, 1, "train-0-1", id="short"),
        pytest.param("a" * 70, 12, 3, "a" * 58 + "-12-3", id="long-name-truncated"),
        pytest.param("a" * 58 + "-bc", 1, 0, "a" * 58 + "-1-0", id="no-dash-before-suffix"),
    ],
)
def test_pod_names_fit_63_characters(job: str, gang: int, rank: int, expected: str) -> None:
    name = pod_name(job, gang, rank)
    assert name == expected
    assert len(name) <= 63


def test_pods_of_different_gangs_never_share_a_name() -> None:
    long = "x" * 80
    names = {pod_name(long, g, r) for g in range(12) for r in range(12)}
    assert len(names) == 144


def test_labels_annotations_and_owner() -> None:
    job = make_trainjob("j").nodes(2).typed(uid=UID)
    pod = build_pod(job, node(1, gang=2), None)
    assert pod.metadata.name == "j-2-1"
    assert pod.metadata.labels == {
        TRAINJOB_NAME_LABEL: "j",
        TRAINJOB_UID_LABEL: UID,
        GENERATION_LABEL: "2",
        RANK_LABEL: "1",
    }
    assert pod.metadata.annotations == {WORLD_ANNOTATION: "2", PORT_ANNOTATION: "29500"}
    (owner,) = pod.metadata.owner_references
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("TrainJob", "j", UID, True)
    assert (gang_of(pod), rank_of(pod), world_of(pod), port_of([pod])) == (2, 1, 2, 29500)
    assert selector(job) == f"{TRAINJOB_UID_LABEL}={UID}"


def test_a_placed_pod_is_bound_to_its_slot() -> None:
    job = make_trainjob("j").nodes(2).cpu("2").trainer(terminationGracePeriodSeconds=90).typed()
    pod = build_pod(job, node(0), PodPlacement(node_name="node-a", gpus=[2, 3]))
    assert pod.spec.node_name == "node-a"
    assert pod.metadata.annotations[GPU_ANNOTATION] == "2,3"
    # The scheduler finds a Workload's pods by this annotation (its active pods, grace
    # periods, when an evicted one may be requeued): it must name the Workload.
    assert pod.metadata.annotations[WORKLOAD_ANNOTATION] == workload_name(job) == "trainjob-j"
    assert pod.spec.resources.requests == {"cpu": "2"}
    assert pod.spec.termination_grace_period_seconds == 90


def test_the_checkpoint_dir_is_per_job_by_uid() -> None:
    job = make_trainjob("j").typed(uid=UID)
    assert checkpoint_dir("/root", job) == "/root/default/j-0123abcd"
    other = make_trainjob("j").typed(uid="fedcba98-0000")
    assert checkpoint_dir("/root", other) != checkpoint_dir("/root", job)
