"""FGD breaks score ties by node name, as the authors' scheduler does (``selectHost``
takes the first name); the random tie order of their experiments comes from their
simulator renaming the nodes, which cnai's simulator does too (``test_renamed.py``)."""

from __future__ import annotations

import numpy as np

from cnai.scheduling.placement import (
    ClusterSnapshot,
    NodeSpec,
    PodRequest,
    TargetWorkload,
    make_policy,
    place,
)

WORKLOAD = TargetWorkload.from_pods([PodRequest.of(cpu=1, gpu=1)])
POD = PodRequest.of(cpu=1, gpu=1)


def chosen(names: list[str], seed: int) -> str:
    """Where FGD puts the pod on identical empty nodes (all score the same)."""
    snap = ClusterSnapshot.from_nodes([NodeSpec(n, 32000, 65536, 2, "T4") for n in names])
    found = place(snap, POD, make_policy("fgd", WORKLOAD), np.random.default_rng(seed))
    assert found is not None
    return snap.names[found.node]


def test_ties_go_to_the_first_name_whatever_the_listing_order_or_seed() -> None:
    names = [f"node-{i:02d}" for i in range(12)]
    shuffled = [names[i] for i in np.random.default_rng(7).permutation(len(names))]
    assert {chosen(names, seed) for seed in range(5)} == {"node-00"}
    assert {chosen(shuffled, seed) for seed in range(5)} == {"node-00"}
