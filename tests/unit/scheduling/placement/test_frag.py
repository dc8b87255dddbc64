"""Node fragmentation against a target workload, and how the workload is built."""

from __future__ import annotations

import numpy as np
import pytest

from cnai.scheduling.placement import PodRequest, TargetWorkload
from cnai.scheduling.placement.frag import fragmentation


def frag(free: list[int], workload: TargetWorkload, cpu: int = 32000, model: int = 0) -> float:
    access = workload.access(("T4",))
    return float(
        fragmentation(
            np.array([cpu], np.int64),
            np.array([free], np.int64),
            np.array([model], np.int64),
            workload,
            access,
        )[0]
    )


def tasks(*pods: PodRequest) -> TargetWorkload:
    return TargetWorkload.from_pods(pods)


HALF = PodRequest.of(cpu=1, gpu=0.5)


@pytest.mark.parametrize(
    ("free", "workload", "cpu", "expected"),
    [
        pytest.param([1000, 300], tasks(HALF), 32000, 300, id="only-the-too-small-device-counts"),
        pytest.param([1000, 600], tasks(HALF), 32000, 0, id="every-device-usable-no-fragment"),
        pytest.param(
            [1000, 300], tasks(HALF), 500, 1300, id="too-little-cpu-makes-all-gpus-fragment"
        ),
        pytest.param(
            [1000, 300], tasks(PodRequest.of(cpu=1)), 32000, 1300, id="cpu-only-tasks-use-no-gpu"
        ),
        pytest.param(
            [1000, 1000],
            tasks(PodRequest.of(cpu=1, gpu=4)),
            32000,
            2000,
            id="a-2-gpu-node-is-all-fragment-for-4-gpu-tasks",
        ),
        pytest.param(
            [1000, 300],
            tasks(HALF, PodRequest.of(cpu=1, gpu=4)),
            32000,
            0.5 * 300 + 0.5 * 1300,
            id="expectation-over-the-task-mix",
        ),
        pytest.param(
            [1000],
            tasks(PodRequest.of(cpu=1, gpu=1, models="V100M32")),
            32000,
            1000,
            id="a-model-no-task-accepts-is-all-fragment",
        ),
    ],
)
def test_fragmentation(
    free: list[int], workload: TargetWorkload, cpu: int, expected: float
) -> None:
    assert frag(free, workload, cpu) == pytest.approx(expected)


def test_workload_keeps_the_popular_types_and_renormalises() -> None:
    pods = [HALF] * 6 + [PodRequest.of(cpu=1, gpu=1)] * 3 + [PodRequest.of(cpu=2)]
    w = TargetWorkload.from_pods(pods, threshold=0.9)
    assert len(w) == 2
    assert w.share.tolist() == pytest.approx([6 / 9, 3 / 9])
    assert w.gpu_milli.tolist() == [500, 1000]


def test_workload_memory_does_not_split_a_type() -> None:
    pods = [PodRequest.of(cpu=1, memory_mib=m, gpu=1) for m in (100, 200)]
    assert len(TargetWorkload.from_pods(pods)) == 1
