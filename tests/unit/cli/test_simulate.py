"""`cnai simulate` on a tiny trace: files written and the one-line JSON summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cnai.cli.main import app


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path]:
    nodes = tmp_path / "nodes.csv"
    nodes.write_text(
        "sn,cpu_milli,memory_mib,gpu,model\nn0,32000,65536,2,T4\nn1,32000,65536,4,V100M16\n"
    )
    pods = tmp_path / "pods.csv"
    pods.write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,"
        "creation_time,deletion_time,scheduled_time\n"
        "p0,4000,1024,1,500,,LS,Running,0,100,0\n"
        "p1,4000,1024,1,1000,,LS,Running,10,50,10\n"
        "p2,4000,1024,2,1000,V100M16,LS,Running,20,90,20\n"
        "p3,2000,1024,0,0,,BE,Running,30,40,30\n"
    )
    return nodes, pods


@pytest.mark.parametrize(
    ("mode", "keys"),
    [
        pytest.param("saturate", {"unallocated_gpus", "gpu_allocation_ratio"}, id="saturate"),
        pytest.param("replay", {"queue_delay_p99_s", "jct_p50_s"}, id="replay-adds-percentiles"),
    ],
)
def test_json_summary_is_the_last_line(
    tiny: tuple[Path, Path], tmp_path: Path, mode: str, keys: set[str]
) -> None:
    nodes, pods = tiny
    out = tmp_path / "out"
    args = ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--policy", "fgd"]
    result = CliRunner().invoke(app, [*args, "--mode", mode, "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["policy"] == "fgd"
    assert summary["mode"] == mode
    assert keys <= summary.keys()
    assert any(p.suffix == ".csv" for p in out.iterdir())


def test_seeds_repeat_and_average(tiny: tuple[Path, Path], tmp_path: Path) -> None:
    nodes, pods = tiny
    args = ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--policy", "random-fit"]
    seeds = ["--seed", "1", "--seed", "2"]
    result = CliRunner().invoke(app, [*args, *seeds, "--out", str(tmp_path / "o"), "--json"])
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["seeds"] == [1, 2]
    assert len(summary["unallocated_gpus_per_seed"]) == 2


def test_unknown_policy_is_a_clear_error(tiny: tuple[Path, Path]) -> None:
    nodes, pods = tiny
    args = ["simulate", "--nodes", str(nodes), "--pods", str(pods), "--policy", "worst-fit"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert "unknown policy" in result.output
