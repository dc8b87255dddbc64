"""Saturate mode: the 130% stop rule, skipped pods, the curve and seeded determinism."""

from __future__ import annotations

import numpy as np
import pytest

from cnai.scheduling.placement import NodeSpec, PodRequest
from cnai.scheduling.simulator import PodTrace, arrival_order, run_saturate


def trace(*gpus: float) -> PodTrace:
    n = len(gpus)
    zeros = np.zeros(n, np.int64)
    return PodTrace(
        tuple(f"p{i}" for i in range(n)),
        tuple(PodRequest.of(cpu=1, memory_mib=10, gpu=g) for g in gpus),
        zeros,
        zeros,
        zeros,
    )


ONE_GPU_NODE = [NodeSpec("n0", 8000, 65536, 1, "T4")]


def test_arrivals_stop_part_way_through_the_trace_at_130_percent() -> None:
    result = run_saturate(ONE_GPU_NODE, trace(1, 1, 1), "best-fit", shuffle=False)
    assert result.arrived == 1  # a second whole GPU would make 200% > 130%
    assert result.unallocated_gpus == 0


def test_draws_with_replacement_continue_until_130_percent() -> None:
    order = arrival_order(
        np.array([250], np.int64), 1.3 * 1000, np.random.default_rng(0), shuffle=False
    )
    assert len(order) == 5  # 5 x 250m = 1250m <= 1300m; a sixth would pass it


def test_a_pod_that_fits_nowhere_is_skipped_and_counted() -> None:
    result = run_saturate(ONE_GPU_NODE, trace(0.5, 1, 0.5), "first-fit", ratio=2.0, shuffle=False)
    assert result.failed >= 1
    assert result.allocated_milli.tolist()[:3] == [500, 500, 1000]
    assert result.gpu_allocation_ratio == 1.0


def test_curve_reports_allocation_against_arrived_demand() -> None:
    nodes = [NodeSpec("n0", 8000, 65536, 2, "T4")]
    result = run_saturate(nodes, trace(1, 1, 1), "best-fit", shuffle=False)
    curve = dict(result.curve())
    assert curve[0] == 0
    assert curve[50] == pytest.approx(50)
    assert curve[100] == pytest.approx(100)


@pytest.mark.parametrize("policy", ["random-fit", "fgd", "fgd-packed"])
def test_same_seed_same_result(policy: str) -> None:
    nodes = [NodeSpec(f"n{i}", 16000, 65536, 2, "T4") for i in range(4)]
    pods = trace(0.5, 0.25, 1, 2, 0.75, 0)
    first = run_saturate(nodes, pods, policy, seed=7)
    again = run_saturate(nodes, pods, policy, seed=7)
    assert first.allocated_milli.tolist() == again.allocated_milli.tolist()
    assert first.failed == again.failed


def test_seed_changes_the_arrivals() -> None:
    demand = np.array([100, 200, 300, 400, 500], np.int64)
    orders = {
        tuple(arrival_order(demand, 5000, np.random.default_rng(s), shuffle=True)) for s in range(5)
    }
    assert len(orders) > 1
