"""Random-fit: a uniformly random feasible node, and a random fitting device on it."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement.base import whole_or_none
from cnai.scheduling.placement.fit import gpu_fits
from cnai.scheduling.placement.placement import Placement
from cnai.scheduling.placement.request import PodRequest
from cnai.scheduling.placement.snapshot import ClusterSnapshot


class RandomFit:
    name = "random-fit"

    def choose(
        self,
        snapshot: ClusterSnapshot,
        pod: PodRequest,
        candidates: NDArray[np.int64],
        rng: np.random.Generator,
    ) -> Placement:
        node = int(candidates[rng.integers(len(candidates))])
        if pod.is_shared:
            devices = np.flatnonzero(gpu_fits(snapshot.gpu_free[node], pod))
            gpu = int(devices[rng.integers(len(devices))])
            return Placement(node, (gpu,), pod.gpu_milli)
        return whole_or_none(snapshot, pod, node)
