"""WorldInfo: the torchrun environment, its single-process defaults and its errors."""

from __future__ import annotations

import re

import pytest

from cnai.training.world import WorldInfo, world_info

TORCHRUN_ENV = {
    "RANK": "3",
    "WORLD_SIZE": "4",
    "LOCAL_RANK": "1",
    "LOCAL_WORLD_SIZE": "2",
    "GROUP_RANK": "1",
    "TORCHELASTIC_RESTART_COUNT": "2",
    "MASTER_ADDR": "10.0.0.7",
    "MASTER_PORT": "29400",
}


def test_reads_the_torchrun_contract() -> None:
    assert WorldInfo.from_env(TORCHRUN_ENV) == WorldInfo(
        rank=3,
        world_size=4,
        local_rank=1,
        local_world_size=2,
        node_rank=1,
        restart_count=2,
        master_addr="10.0.0.7",
        master_port=29400,
    )


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({}, id="nothing-set"),
        pytest.param({"RANK": "", "WORLD_SIZE": " "}, id="empty-values-count-as-unset"),
    ],
)
def test_a_single_process_is_rank_0_of_1(environ: dict[str, str]) -> None:
    world = WorldInfo.from_env(environ)
    assert (world.rank, world.world_size, world.local_rank, world.local_world_size) == (0, 1, 0, 1)
    assert (world.node_rank, world.restart_count) == (0, 0)
    assert (world.master_addr, world.master_port) == ("127.0.0.1", 29500)
    assert world.is_main


@pytest.mark.parametrize(
    ("environ", "node_rank"),
    [
        pytest.param({"NODE_RANK": "2"}, 2, id="node-rank-when-no-group-rank"),
        pytest.param({"GROUP_RANK": "1", "NODE_RANK": "2"}, 1, id="group-rank-wins"),
    ],
)
def test_node_rank(environ: dict[str, str], node_rank: int) -> None:
    assert WorldInfo.from_env(environ).node_rank == node_rank


def test_only_rank_0_is_main() -> None:
    assert not WorldInfo.from_env({"RANK": "1", "WORLD_SIZE": "2"}).is_main


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param({"RANK": "one"}, "RANK='one' is not an integer", id="rank-not-an-integer"),
        pytest.param({"WORLD_SIZE": "2.0"}, "WORLD_SIZE='2.0'", id="world-size-a-float"),
        pytest.param(
            {"RANK": "2", "WORLD_SIZE": "2"},
            "RANK=2 must be less than WORLD_SIZE=2",
            id="rank-2-of-2",
        ),
        pytest.param({"RANK": "-1"}, "RANK=-1 is out of range", id="negative-rank"),
        pytest.param({"WORLD_SIZE": "0"}, "WORLD_SIZE=0 is out of range", id="empty-world"),
        pytest.param(
            {"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "2"},
            "LOCAL_RANK=2 must be less than LOCAL_WORLD_SIZE=2",
            id="local-rank-2-of-2",
        ),
        pytest.param(
            {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "4"},
            "LOCAL_WORLD_SIZE=4 is larger than WORLD_SIZE=2",
            id="more-local-workers-than-workers",
        ),
        pytest.param({"NODE_RANK": "x"}, "NODE_RANK='x'", id="node-rank-not-an-integer"),
        pytest.param({"GROUP_RANK": "-2"}, "GROUP_RANK=-2", id="negative-group-rank"),
        pytest.param(
            {"TORCHELASTIC_RESTART_COUNT": "-1"},
            "TORCHELASTIC_RESTART_COUNT=-1",
            id="negative-restart-count",
        ),
        pytest.param(
            {"MASTER_PORT": "70000"}, "MASTER_PORT=70000 is out of range", id="port-too-big"
        ),
        pytest.param({"MASTER_PORT": "http"}, "MASTER_PORT='http'", id="port-a-name"),
    ],
)
def test_errors_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        WorldInfo.from_env(environ)


def test_world_info_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert (world_info().rank, world_info().world_size) == (1, 2)


def test_is_frozen() -> None:
    world = WorldInfo()
    with pytest.raises(AttributeError):
        world.rank = 1  # type: ignore[misc]


def test_the_platforms_restart_count_wins_over_torchruns() -> None:
    """Under torchrun inside a TrainJob node, torchrun resets TORCHELASTIC_RESTART_COUNT
    to its own count; CNAI_RESTART_COUNT carries the gang's."""
    env = {"TORCHELASTIC_RESTART_COUNT": "0", "CNAI_RESTART_COUNT": "2"}
    assert WorldInfo.from_env(env).restart_count == 2
    assert WorldInfo.from_env({"TORCHELASTIC_RESTART_COUNT": "1"}).restart_count == 1
