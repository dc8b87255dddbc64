"""First-fit: the first node (in snapshot order) that fits, the first device that fits."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement.base import whole_or_none
from cnai.scheduling.placement.fit import first_gpu
from cnai.scheduling.placement.placement import Placement
from cnai.scheduling.placement.request import PodRequest
from cnai.scheduling.placement.snapshot import ClusterSnapshot


class FirstFit:
    name = "first-fit"

    def choose(
        self,
        snapshot: ClusterSnapshot,
        pod: PodRequest,
        candidates: NDArray[np.int64],
        rng: np.random.Generator,
    ) -> Placement:
        node = int(candidates[0])
        if pod.is_shared:
            gpu = first_gpu(snapshot.gpu_free[node], pod.gpu_milli)
            return Placement(node, (gpu,), pod.gpu_milli)
        return whole_or_none(snapshot, pod, node)
