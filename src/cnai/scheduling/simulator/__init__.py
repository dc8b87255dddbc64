"""The trace-driven simulator: replays a workload trace through the production placement
code on a simulated clock (DESIGN.md principle 3). Modes: ``saturate`` (the FGD
authors' fill-to-130% evaluation) and ``replay`` (arrivals and durations from the trace).
"""

from __future__ import annotations

from cnai.scheduling.simulator.output import (
    MATPLOTLIB_HINT,
    matplotlib_available,
    replay_summary,
    saturate_summary,
    write_replay,
    write_saturate,
)
from cnai.scheduling.simulator.replay import ReplayResult, run_replay
from cnai.scheduling.simulator.saturate import SaturateResult, arrival_order, run_saturate
from cnai.scheduling.simulator.trace import PodTrace, load_nodes, load_pods

__all__ = [
    "MATPLOTLIB_HINT",
    "PodTrace",
    "ReplayResult",
    "SaturateResult",
    "arrival_order",
    "load_nodes",
    "load_pods",
    "matplotlib_available",
    "replay_summary",
    "run_replay",
    "run_saturate",
    "saturate_summary",
    "write_replay",
    "write_saturate",
]
