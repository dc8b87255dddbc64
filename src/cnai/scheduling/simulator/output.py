"""What a simulation writes: CSV (always), a PNG plot (with matplotlib, the ``sim``
extra), and the one-line JSON summary."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cnai.scheduling.simulator.replay import ReplayResult
from cnai.scheduling.simulator.saturate import SaturateResult

MATPLOTLIB_HINT = "matplotlib is not installed, so no PNG plot; pip install 'cnai[sim]'"


def saturate_summary(results: Sequence[SaturateResult]) -> dict[str, Any]:
    unallocated = [r.unallocated_gpus for r in results]
    return {
        "policy": results[0].policy,
        "mode": "saturate",
        "seeds": [r.seed for r in results],
        "gpu_allocation_ratio": float(np.mean([r.gpu_allocation_ratio for r in results])),
        "unallocated_gpus": float(np.mean(unallocated)),
        "unallocated_gpus_per_seed": unallocated,
        "arrived_pods": float(np.mean([r.arrived for r in results])),
        "failed_pods": float(np.mean([r.failed for r in results])),
        "capacity_gpus": results[0].capacity_milli / 1000,
        "wall_s": float(sum(r.wall_s for r in results)),
    }


def replay_summary(result: ReplayResult) -> dict[str, Any]:
    return {
        "policy": result.policy,
        "mode": "replay",
        "seeds": [result.seed],
        "gpu_allocation_ratio": result.gpu_allocation_ratio,
        "unallocated_gpus": result.unallocated_gpus,
        **result.percentiles(),
        "started_pods": int(result.started.sum()),
        "unschedulable_pods": result.unschedulable,
        "capacity_gpus": result.capacity_milli / 1000,
        "wall_s": result.wall_s,
    }


def write_saturate(out: Path, results: Sequence[SaturateResult]) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "saturate_curve.csv"
    curves = {r.seed: r.curve() for r in results}
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["policy", "seed", "arrived_gpu_pct", "gpu_allocation_pct"])
        for seed, curve in curves.items():
            for pct, alloc in curve:
                writer.writerow([results[0].policy, seed, pct, f"{alloc:.4f}"])
    written = [path]
    png = _plot(
        out / "saturate_curve.png",
        [([p for p, _ in c], [a for _, a in c], f"seed {s}") for s, c in curves.items()],
        "arrived GPU demand (% of capacity)",
        "GPU allocation (% of capacity)",
        f"{results[0].policy}: allocation vs arrived demand",
    )
    return written + ([png] if png else [])


def write_replay(out: Path, result: ReplayResult) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    pods = out / "replay_pods.csv"
    with pods.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["pod", "arrival_s", "start_s", "finish_s", "queue_delay_s", "jct_s"])
        for i in range(len(result.arrival)):
            a, s, e = int(result.arrival[i]), int(result.start[i]), int(result.finish[i])
            waited, jct = (s - a, e - a) if s >= 0 else ("", "")
            writer.writerow([i, a, s if s >= 0 else "", e if s >= 0 else "", waited, jct])
    timeline = out / "replay_timeline.csv"
    with timeline.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["time_s", "allocated_gpus"])
        for t, milli in result.timeline:
            writer.writerow([int(t), f"{milli / 1000:.3f}"])
    t = result.timeline
    png = _plot(
        out / "replay_timeline.png",
        [(list(t[:, 0] / 3600), list(t[:, 1] * 100 / result.capacity_milli), result.policy)],
        "time (hours)",
        "GPU allocation (% of capacity)",
        f"{result.policy}: replay",
    )
    return [pods, timeline] + ([png] if png else [])


def _plot(
    path: Path, series: list[tuple[list[Any], list[Any], str]], xlabel: str, ylabel: str, title: str
) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for xs, ys, label in series:
        ax.plot(xs, ys, label=label, linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401 - probing the optional extra
    except ImportError:
        return False
    return True
