"""Fit rules: CPU, memory, GPU model, fractional sharing of one device, whole GPUs."""

from __future__ import annotations

import numpy as np
import pytest

from cnai.scheduling.placement import ClusterSnapshot, NodeSpec, Placement, PodRequest
from cnai.scheduling.placement.fit import could_ever_fit, feasible


def cluster(*nodes: NodeSpec, used: dict[tuple[int, int], int] | None = None) -> ClusterSnapshot:
    snap = ClusterSnapshot.from_nodes(list(nodes))
    for (node, gpu), milli in (used or {}).items():
        snap.bind_in_place(PodRequest(0, 0, 1, milli), Placement(node, (gpu,), milli))
    return snap


T4 = NodeSpec("n0", cpu_milli=8000, memory_mib=16384, num_gpu=2, gpu_model="T4")


@pytest.mark.parametrize(
    ("snapshot", "pod", "fits"),
    [
        pytest.param(cluster(T4), PodRequest.of(cpu=8), True, id="cpu-exactly-free-fits"),
        pytest.param(cluster(T4), PodRequest.of(cpu=8.001), False, id="cpu-short-by-1m"),
        pytest.param(cluster(T4), PodRequest.of(memory_mib=16385), False, id="memory-short"),
        pytest.param(cluster(T4), PodRequest.of(gpu=2), True, id="two-whole-gpus-on-2-gpu-node"),
        pytest.param(cluster(T4), PodRequest.of(gpu=4), False, id="four-gpus-on-2-gpu-node"),
        pytest.param(
            cluster(T4, used={(0, 0): 100}),
            PodRequest.of(gpu=2),
            False,
            id="two-gpus-need-two-fully-free-devices",
        ),
        pytest.param(
            cluster(T4, used={(0, 0): 100}),
            PodRequest.of(gpu=1),
            True,
            id="one-whole-gpu-uses-the-untouched-device",
        ),
        pytest.param(
            cluster(T4, used={(0, 0): 600, (0, 1): 700}),
            PodRequest.of(gpu=0.4),
            True,
            id="fraction-fits-into-the-share-left-on-one-device",
        ),
        pytest.param(
            cluster(T4, used={(0, 0): 600, (0, 1): 700}),
            PodRequest.of(gpu=0.5),
            False,
            id="fraction-never-spans-two-devices",
        ),
        pytest.param(cluster(T4), PodRequest.of(gpu=1, models="V100M16|T4"), True, id="model-ok"),
        pytest.param(
            cluster(T4), PodRequest.of(gpu=1, models="V100M16|V100M32"), False, id="model-wrong"
        ),
        pytest.param(
            cluster(NodeSpec("cpu", 8000, 1024)),
            PodRequest.of(gpu=0.1),
            False,
            id="cpu-only-node-has-no-gpu",
        ),
    ],
)
def test_feasible(snapshot: ClusterSnapshot, pod: PodRequest, fits: bool) -> None:
    assert feasible(snapshot, pod).tolist() == [fits]


def test_two_fractions_share_one_device() -> None:
    snap = cluster(NodeSpec("n", 8000, 1024, 1, "T4"))
    half = PodRequest.of(gpu=0.5)
    snap = snap.bind(half, Placement(0, (0,), 500))
    assert feasible(snap, half).tolist() == [True]
    snap = snap.bind(half, Placement(0, (0,), 500))
    assert feasible(snap, half).tolist() == [False]
    assert snap.gpu_allocated_milli == 1000


def test_bind_is_pure_and_bumps_the_node_version() -> None:
    snap = cluster(T4)
    after = snap.bind(PodRequest.of(cpu=1, gpu=1), Placement(0, (1,), 1000))
    assert snap.gpu_free[0].tolist() == [1000, 1000]
    assert after.gpu_free[0].tolist() == [1000, 0]
    assert after.cpu_free[0] == 7000
    assert after.version[0] != snap.version[0]


@pytest.mark.parametrize(
    ("pod", "ever"),
    [
        pytest.param(PodRequest.of(gpu=2), True, id="fits-an-empty-node"),
        pytest.param(PodRequest.of(gpu=8), False, id="no-node-has-8-gpus"),
        pytest.param(PodRequest.of(gpu=1, models="A100"), False, id="no-node-has-the-model"),
    ],
)
def test_could_ever_fit(pod: PodRequest, ever: bool) -> None:
    full = cluster(T4, used={(0, 0): 1000, (0, 1): 1000})
    assert could_ever_fit(full, pod) is ever


@pytest.mark.parametrize(
    ("gpu", "expected"),
    [
        pytest.param(0.25, (1, 250), id="quarter-gpu-is-250-milli-of-one-device"),
        pytest.param(1, (1, 1000), id="one-whole-gpu"),
        pytest.param(4, (4, 1000), id="four-whole-gpus"),
    ],
)
def test_request_from_user_units(gpu: float, expected: tuple[int, int]) -> None:
    pod = PodRequest.of(gpu=gpu)
    assert (pod.num_gpu, pod.gpu_milli) == expected


def test_several_fractional_gpus_are_rejected() -> None:
    with pytest.raises(ValueError, match="whole"):
        PodRequest(0, 0, 2, 500)
    with pytest.raises(ValueError, match="whole number"):
        PodRequest.of(gpu=1.5)


def test_model_mask_without_constraint_is_all_nodes() -> None:
    assert np.all(cluster(T4, NodeSpec("c", 1, 1)).model_mask(PodRequest.of(gpu=1)))
