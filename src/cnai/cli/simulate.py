"""`cnai simulate`: replay a cluster trace through the placement policies.

numpy and the simulator load only when the command runs, so `cnai --help` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cnai.cli.errors import err_console, fail


def register(app: typer.Typer) -> None:
    app.command("simulate")(simulate)


def simulate(
    nodes: Annotated[Path, typer.Option("--nodes", help="Node list CSV (sn,cpu_milli,...).")],
    pods: Annotated[Path, typer.Option("--pods", help="Pod list CSV (name,cpu_milli,...).")],
    policy: Annotated[
        str, typer.Option("--policy", help="first-fit, random-fit, best-fit, fgd, fgd-packed.")
    ] = "fgd",
    mode: Annotated[str, typer.Option("--mode", help="saturate or replay.")] = "saturate",
    seed: Annotated[
        list[int] | None, typer.Option("--seed", help="Seed; repeat to average over seeds.")
    ] = None,
    out: Annotated[Path, typer.Option("--out", help="Directory for CSV and PNG.")] = Path(
        "simulation"
    ),
    ratio: Annotated[
        float, typer.Option("--ratio", help="Saturate: stop arrivals at this x GPU capacity.")
    ] = 1.3,
    shuffle: Annotated[
        bool, typer.Option(help="Saturate: shuffle the trace's own pods by the seed.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="End with a one-line JSON summary.")
    ] = False,
) -> None:
    """Replay a trace through the same placement code the scheduler runs."""
    from cnai.scheduling import simulator as sim
    from cnai.scheduling.placement import POLICY_NAMES

    if policy not in POLICY_NAMES:
        raise fail(f"unknown policy {policy!r}; one of {', '.join(POLICY_NAMES)}")
    if mode not in ("saturate", "replay"):
        raise fail(f"unknown mode {mode!r}; saturate or replay")
    for path in (nodes, pods):
        if not path.is_file():
            raise fail(f"no such file: {path}")
    seeds = seed or [42]
    node_list, trace = sim.load_nodes(nodes), sim.load_pods(pods)
    summary: dict[str, Any]
    if mode == "saturate":
        results = [
            sim.run_saturate(node_list, trace, policy, s, ratio=ratio, shuffle=shuffle)
            for s in seeds
        ]
        summary = sim.saturate_summary(results)
        written = sim.write_saturate(out, results)
    else:
        result = sim.run_replay(node_list, trace, policy, seeds[0])
        summary = sim.replay_summary(result)
        written = sim.write_replay(out, result)
    if not sim.matplotlib_available():
        err_console.print(sim.MATPLOTLIB_HINT)
    _print_human(summary, written)
    if as_json:
        typer.echo(json.dumps(summary, separators=(",", ":")))


def _print_human(summary: dict[str, Any], written: list[Path]) -> None:
    typer.echo(f"policy {summary['policy']}, mode {summary['mode']}, seeds {summary['seeds']}")
    typer.echo(
        f"GPU allocation {summary['gpu_allocation_ratio'] * 100:.2f}% of "
        f"{summary['capacity_gpus']:.0f} GPUs; unallocated {summary['unallocated_gpus']:.1f} GPUs"
    )
    for key in ("queue_delay_p50_s", "queue_delay_p99_s", "jct_p50_s", "jct_p99_s"):
        if key in summary:
            typer.echo(f"{key}: {summary[key]:.1f}")
    for path in written:
        typer.echo(f"wrote {path}")
