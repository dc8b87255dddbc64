"""The policy protocol and the helpers every policy shares.

A policy receives a snapshot, a pod and the indices of the nodes that can host it
(never empty), and returns where the pod goes. It must not mutate the snapshot.
Randomness (random-fit) comes from the ``rng`` the caller passes, so a
seeded run is reproducible.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement.fit import first_whole_gpus
from cnai.scheduling.placement.placement import Placement
from cnai.scheduling.placement.request import PodRequest
from cnai.scheduling.placement.snapshot import ClusterSnapshot


class Policy(Protocol):
    """Chooses one node (and its devices) among feasible candidates."""

    name: str

    def choose(
        self,
        snapshot: ClusterSnapshot,
        pod: PodRequest,
        candidates: NDArray[np.int64],
        rng: np.random.Generator,
    ) -> Placement: ...


def pick_max(
    scores: NDArray[np.float64] | NDArray[np.int64],
    candidates: NDArray[np.int64],
    snapshot: ClusterSnapshot,
) -> int:
    """The candidate with the highest score; on ties the node whose name sorts first (as
    the FGD authors' scheduler does, for reproducibility; stock Kubernetes picks at
    random, which measurably loosens packing)."""
    best = candidates[scores == scores.max()]
    if len(best) == 1:
        return int(best[0])
    return int(best[np.argmin(snapshot.name_rank[best])])


def whole_or_none(snapshot: ClusterSnapshot, pod: PodRequest, node: int) -> Placement:
    """Placement for a pod without a fractional GPU: the first fully free devices."""
    if pod.num_gpu == 0:
        return Placement(node)
    gpus = first_whole_gpus(snapshot.gpu_free[node], pod.num_gpu)
    return Placement(node, gpus, pod.gpu_milli)
