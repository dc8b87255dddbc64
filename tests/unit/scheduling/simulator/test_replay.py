"""Replay mode: arrivals and durations on a simulated clock, queueing and JCT."""

from __future__ import annotations

import numpy as np
import pytest

from cnai.scheduling.placement import NodeSpec, PodRequest
from cnai.scheduling.simulator import PodTrace, run_replay


def timed(*pods: tuple[float, int, int]) -> PodTrace:
    """(gpu, arrival, duration) per pod."""
    arrival = np.array([a for _, a, _ in pods], np.int64)
    return PodTrace(
        tuple(f"p{i}" for i in range(len(pods))),
        tuple(PodRequest.of(cpu=1, gpu=g) for g, _, _ in pods),
        arrival,
        arrival + np.array([d for _, _, d in pods], np.int64),
        arrival,
    )


NODE = [NodeSpec("n0", 8000, 65536, 1, "T4")]


def test_a_pod_waits_for_the_gpu_then_runs_its_duration() -> None:
    result = run_replay(NODE, timed((1, 0, 10), (1, 5, 10)), "best-fit")
    assert result.start.tolist() == [0, 10]
    assert result.finish.tolist() == [10, 20]
    stats = result.percentiles()
    assert stats["queue_delay_p50_s"] == pytest.approx(2.5)
    assert stats["jct_p99_s"] == pytest.approx(14.95)


def test_fractions_share_the_device_without_waiting() -> None:
    result = run_replay(NODE, timed((0.5, 0, 10), (0.5, 1, 10)), "fgd")
    assert result.start.tolist() == [0, 1]
    assert result.percentiles()["queue_delay_p99_s"] == 0


def test_a_small_pod_backfills_past_a_waiting_big_one() -> None:
    nodes = [NodeSpec("n0", 8000, 65536, 2, "T4")]
    result = run_replay(nodes, timed((1, 0, 10), (2, 1, 5), (1, 2, 3)), "first-fit")
    assert result.start.tolist() == [0, 10, 2]


def test_a_pod_no_node_could_ever_host_is_unschedulable() -> None:
    result = run_replay(NODE, timed((4, 0, 10), (1, 0, 10)), "best-fit")
    assert result.unschedulable == 1
    assert result.start.tolist() == [-1, 0]


def test_allocation_is_time_weighted() -> None:
    result = run_replay(NODE, timed((1, 0, 10), (0.5, 10, 10)), "best-fit")
    assert result.gpu_allocation_ratio == pytest.approx(0.75)
