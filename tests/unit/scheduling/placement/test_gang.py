"""Gang placement: all-or-nothing, on the fewest nodes, on small hand-made clusters."""

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
    place_gang,
)

ANY = TargetWorkload.from_pods([PodRequest.of(cpu=1, gpu=g) for g in (0.5, 1)])


def cluster(*gpus: int, used: dict[int, list[int]] | None = None, cpu: int = 32) -> ClusterSnapshot:
    """One T4 node per argument with that many GPUs, named n0, n1, ...; ``used`` maps a
    node to the milli-GPU already taken on each of its devices."""
    snap = ClusterSnapshot.from_nodes(
        [NodeSpec(f"n{i}", cpu * 1000, 65536, g, "T4") for i, g in enumerate(gpus)]
    )
    for n, milli in (used or {}).items():
        for g, m in enumerate(milli):
            if m:
                snap.bind_in_place(PodRequest(0, 0, 1, m), Placement(n, (g,), m))
    return snap


def nodes_of(placements: list[Placement] | None) -> list[int]:
    assert placements is not None
    return [p.node for p in placements]


@pytest.mark.parametrize(
    ("policy", "snapshot", "pods", "expected_nodes"),
    [
        pytest.param(
            policy,
            cluster(2, 2, 4, 2),
            [PodRequest.of(cpu=1, gpu=1)] * 4,
            [2, 2, 2, 2],
            id=f"{policy}-a-4-pod-gang-fits-on-one-node-with-room-for-4-rather-than-spreading",
        )
        for policy in POLICY_NAMES
    ]
    + [
        pytest.param(
            "best-fit",
            cluster(4, 4, 8),
            [PodRequest.of(cpu=1, gpu=1)] * 6,
            [2] * 6,
            id="six-pods-take-the-one-node-that-holds-six",
        ),
        pytest.param(
            "best-fit",
            cluster(4, 2, 4),
            [PodRequest.of(cpu=1, gpu=1)] * 6,
            [0, 0, 0, 0, 1, 1],
            id="a-gang-larger-than-any-node-fills-the-biggest-then-the-tightest-for-the-rest",
        ),
        pytest.param(
            "best-fit",
            cluster(2, 2, 2, cpu=2),
            [PodRequest.of(cpu=1, gpu=0)] * 2,
            [0, 0],
            id="cpu-only-pods-pack-by-cpu",
        ),
        pytest.param(
            "first-fit",
            cluster(1, 4),
            [PodRequest.of(cpu=1, gpu=2), PodRequest.of(cpu=1, gpu=1), PodRequest.of(cpu=1, gpu=1)],
            [1, 1, 1],
            id="mixed-pods-join-the-node-the-gang-already-uses",
        ),
    ],
)
def test_gang_nodes(
    policy: str, snapshot: ClusterSnapshot, pods: list[PodRequest], expected_nodes: list[int]
) -> None:
    assert nodes_of(place_gang(snapshot, pods, make_policy(policy, ANY))) == expected_nodes


@pytest.mark.parametrize(
    ("snapshot", "pods"),
    [
        pytest.param(
            cluster(2, 1),
            [PodRequest.of(cpu=1, gpu=1)] * 4,
            id="a-gang-that-cannot-fully-fit-returns-none-and-binds-nothing",
        ),
        pytest.param(
            cluster(2, 2),
            [PodRequest.of(cpu=1, gpu=4)],
            id="a-pod-wider-than-every-node-sinks-the-gang",
        ),
        pytest.param(
            cluster(1, used={0: [600]}),
            [PodRequest.of(cpu=1, gpu=0.5)] * 2,
            id="fractions-that-do-not-fit-the-free-share-sink-the-gang",
        ),
    ],
)
@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_gang_that_does_not_fit(
    policy: str, snapshot: ClusterSnapshot, pods: list[PodRequest]
) -> None:
    before = snapshot.gpu_free.copy(), snapshot.cpu_free.copy(), snapshot.version.copy()
    assert place_gang(snapshot, pods, make_policy(policy, ANY)) is None
    assert np.array_equal(snapshot.gpu_free, before[0])
    assert np.array_equal(snapshot.cpu_free, before[1])
    assert np.array_equal(snapshot.version, before[2])


@pytest.mark.parametrize(
    ("snapshot", "pods", "expected"),
    [
        pytest.param(
            cluster(1, 2),
            [PodRequest.of(cpu=1, gpu=0.5)] * 2,
            [Placement(0, (0,), 500), Placement(0, (0,), 500)],
            id="fractional-pods-of-a-gang-share-one-device-where-it-has-room",
        ),
        pytest.param(
            cluster(2, 2),
            [PodRequest.of(cpu=1, gpu=0.5)] * 4,
            [Placement(0, (0,), 500)] * 2 + [Placement(0, (1,), 500)] * 2,
            id="four-half-gpu-pods-fill-both-devices-of-one-node",
        ),
        pytest.param(
            cluster(1, 2, used={0: [700]}),
            [PodRequest.of(cpu=1, gpu=0.5)] * 2,
            [Placement(1, (0,), 500), Placement(1, (0,), 500)],
            id="fractional-pods-skip-a-device-whose-free-share-is-too-small",
        ),
    ],
)
def test_fractional_gang_shares_devices(
    snapshot: ClusterSnapshot, pods: list[PodRequest], expected: list[Placement]
) -> None:
    assert place_gang(snapshot, pods, make_policy("best-fit")) == expected


@pytest.mark.parametrize("policy", POLICY_NAMES)
def test_gang_result_binds_cleanly_and_keeps_input_order(policy: str) -> None:
    snap = cluster(4, 8)
    pods = [PodRequest.of(cpu=1, gpu=1), PodRequest.of(cpu=1, gpu=4), PodRequest.of(cpu=1, gpu=0.5)]
    placements = place_gang(snap, pods, make_policy(policy, ANY))
    assert placements is not None
    assert [len(p.gpus) for p in placements] == [1, 4, 1]
    for pod, p in zip(pods, placements, strict=True):
        snap = snap.bind(pod, p)
    assert (snap.gpu_free >= 0).all()
    assert (snap.cpu_free >= 0).all()


def test_empty_gang_is_placed_trivially() -> None:
    assert place_gang(cluster(1), [], make_policy("best-fit")) == []
