"""Each policy's choice on small hand-made clusters where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from cnai.scheduling.placement import (
    POLICY_NAMES,
    ClusterSnapshot,
    NodeSpec,
    Placement,
    PodRequest,
    TargetWorkload,
    make_policy,
    place,
)


def cluster(*gpus_used: list[int], model: str = "T4", names: list[str] | None = None):
    """One node per argument; each lists the milli-GPU already used per device."""
    nodes = [
        NodeSpec(
            (names or [f"n{i}" for i in range(len(gpus_used))])[i], 32000, 65536, len(u), model
        )
        for i, u in enumerate(gpus_used)
    ]
    snap = ClusterSnapshot.from_nodes(nodes)
    for n, used in enumerate(gpus_used):
        for g, milli in enumerate(used):
            if milli:
                snap.bind_in_place(PodRequest(0, 0, 1, milli), Placement(n, (g,), milli))
    return snap


def workload(*gpu: float) -> TargetWorkload:
    return TargetWorkload.from_pods([PodRequest.of(cpu=1, gpu=g) for g in gpu])


ANY = workload(0.5, 1)


@pytest.mark.parametrize(
    ("policy", "snapshot", "pod", "expected"),
    [
        pytest.param(
            "first-fit",
            cluster([0, 0], [0]),
            PodRequest.of(cpu=1, gpu=1),
            Placement(0, (0,), 1000),
            id="first-fit-takes-the-first-node",
        ),
        pytest.param(
            "best-fit",
            cluster([0] * 8, [0, 0], [0] * 4),
            PodRequest.of(cpu=1, gpu=1),
            Placement(1, (0,), 1000),
            id="best-fit-picks-the-tightest-node",
        ),
        pytest.param(
            "best-fit",
            cluster([0, 600, 0]),
            PodRequest.of(cpu=1, gpu=0.3),
            Placement(0, (1,), 300),
            id="best-fit-puts-a-fraction-on-the-fullest-device-that-fits",
        ),
        pytest.param(
            "best-fit",
            cluster([1000, 0, 0, 0]),
            PodRequest.of(cpu=1, gpu=2),
            Placement(0, (1, 2), 1000),
            id="whole-gpus-are-the-first-free-devices",
        ),
        pytest.param(
            "best-fit",
            cluster([0, 0], [0, 0], names=["zeta", "alpha"]),
            PodRequest.of(cpu=1, gpu=1),
            Placement(1, (0,), 1000),
            id="ties-go-to-the-node-whose-name-sorts-first",
        ),
        pytest.param(
            "fgd",
            cluster([300], [0]),
            PodRequest.of(cpu=1, gpu=0.3),
            Placement(1, (0,), 300),
            id="fgd-avoids-leaving-400m-that-0.6-gpu-tasks-cannot-use",
        ),
        pytest.param(
            "fgd",
            cluster([500], [0]),
            PodRequest.of(cpu=1, gpu=0.5),
            Placement(0, (0,), 500),
            id="fgd-completes-a-half-used-device-for-a-half-gpu-workload",
        ),
        pytest.param(
            "fgd",
            cluster([0, 0, 0, 0], [0, 0]),
            PodRequest.of(cpu=1, gpu=2),
            Placement(1, (0, 1), 1000),
            id="fgd-keeps-the-4-gpu-node-whole-for-4-gpu-tasks",
        ),
    ],
)
def test_policy_choice(
    policy: str, snapshot: ClusterSnapshot, pod: PodRequest, expected: Placement
) -> None:
    assert place(snapshot, pod, make_policy(policy, _workload_for(snapshot, pod))) == expected


def _workload_for(snapshot: ClusterSnapshot, pod: PodRequest) -> TargetWorkload:
    # The FGD cases are built so the right answer follows from the pod's own kind of task
    # plus the one the test names: a 0.3 pod against 0.6 tasks, a 2-GPU pod against
    # 4-GPU tasks, a 0.5 pod against 0.5 tasks.
    if pod.gpu_milli == 300:
        return workload(0.6)
    if pod.num_gpu == 2:
        return workload(4)
    return workload(0.5)


def test_fgd_and_best_fit_disagree_where_best_fit_fragments() -> None:
    snap = cluster([300], [0])
    pod = PodRequest.of(cpu=1, gpu=0.3)
    assert place(snap, pod, make_policy("best-fit")) == Placement(0, (0,), 300)
    assert place(snap, pod, make_policy("fgd", workload(0.6))) == Placement(1, (0,), 300)


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_no_feasible_node_gives_none(policy: str) -> None:
    snap = cluster([1000, 1000])
    assert place(snap, PodRequest.of(gpu=1), make_policy(policy, ANY)) is None


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_place_does_not_change_the_snapshot(policy: str) -> None:
    snap = cluster([0, 500], [0])
    before = snap.gpu_free.copy(), snap.version.copy()
    place(snap, PodRequest.of(cpu=1, gpu=0.5), make_policy(policy, ANY))
    assert np.array_equal(snap.gpu_free, before[0])
    assert np.array_equal(snap.version, before[1])


def test_random_fit_is_reproducible_by_seed_and_spreads() -> None:
    snap = cluster([0], [0], [0], [0])
    pod = PodRequest.of(gpu=0.5)
    policy = make_policy("random-fit")

    def nodes(seed: int) -> list[int]:
        rng = np.random.default_rng(seed)
        return [place(snap, pod, policy, rng).node for _ in range(20)]  # type: ignore[union-attr]

    assert nodes(1) == nodes(1)
    assert len(set(nodes(1))) > 1


def test_fgd_scores_stay_right_as_nodes_change() -> None:
    """The per-node memo must follow node versions: a fresh policy agrees at every step."""
    snap = cluster([0, 0], [0, 0, 0, 0], [0])
    w = workload(0.5, 0.25, 1, 2)
    kept = make_policy("fgd", w)
    for pod in [PodRequest.of(cpu=1, gpu=g) for g in (0.5, 0.25, 1, 0.5, 2, 0.25, 0.25)]:
        expected = place(snap, pod, make_policy("fgd", w))
        got = place(snap, pod, kept)
        assert got == expected
        assert got is not None
        snap.bind_in_place(pod, got)


def test_unknown_policy_and_missing_workload_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown policy"):
        make_policy("worst-fit")
    with pytest.raises(ValueError, match="target workload"):
        make_policy("fgd")
