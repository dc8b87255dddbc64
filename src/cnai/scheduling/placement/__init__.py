"""Placement: which node and which GPUs an admitted pod gets, as pure functions.

``place(snapshot, pod, policy)`` returns a ``Placement`` (node index, device indices,
milli-GPU per device) or None when no node fits. Policies: first-fit, random-fit,
best-fit, FGD (ATC '23) and cnai's FGD-packed. The trace-driven simulator calls the same
function.

``place_gang(snapshot, pods, policy)`` places a gang all-or-nothing on the fewest nodes.
"""

from __future__ import annotations

import numpy as np

from cnai.scheduling.placement.base import Policy
from cnai.scheduling.placement.fit import feasible
from cnai.scheduling.placement.gang import place_gang
from cnai.scheduling.placement.placement import Placement
from cnai.scheduling.placement.registry import POLICY_NAMES, WORKLOAD_POLICIES, make_policy
from cnai.scheduling.placement.request import MILLI, PodRequest, parse_models
from cnai.scheduling.placement.snapshot import ClusterSnapshot, NodeSpec
from cnai.scheduling.placement.workload import TargetWorkload

__all__ = [
    "MILLI",
    "POLICY_NAMES",
    "WORKLOAD_POLICIES",
    "ClusterSnapshot",
    "NodeSpec",
    "Placement",
    "PodRequest",
    "Policy",
    "TargetWorkload",
    "make_policy",
    "parse_models",
    "place",
    "place_gang",
]


def place(
    snapshot: ClusterSnapshot,
    pod: PodRequest,
    policy: Policy,
    rng: np.random.Generator | None = None,
) -> Placement | None:
    """Where ``pod`` goes under ``policy``, or None if it fits nowhere. Pure: the
    snapshot is not changed (apply the answer with ``snapshot.bind``)."""
    candidates = np.flatnonzero(feasible(snapshot, pod)).astype(np.int64)
    if len(candidates) == 0:
        return None
    return policy.choose(snapshot, pod, candidates, rng or np.random.default_rng(0))
