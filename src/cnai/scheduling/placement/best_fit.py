"""Best-fit: the node left with the least free CPU and GPU after placing the pod.

The score follows the FGD authors' baseline: leftover CPU and leftover milli-GPU, each
normalised by the largest node (128 cores, 8 GPUs) and weighted half each, turned into
an integer 0-100 score and min-max normalised across feasible nodes as a Kubernetes
score plugin would; ties go to the node whose name sorts first. A fractional pod takes the tightest
device that fits.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement.base import pick_max, whole_or_none
from cnai.scheduling.placement.fit import tightest_gpu
from cnai.scheduling.placement.placement import Placement
from cnai.scheduling.placement.request import PodRequest
from cnai.scheduling.placement.snapshot import ClusterSnapshot

MAX_SPEC_CPU = 128_000  # milli-CPU of the largest node in the Alibaba trace
MAX_SPEC_GPU = 8_000  # milli-GPU of the largest node


def leftover(
    snapshot: ClusterSnapshot, pod: PodRequest, candidates: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Weighted leftover in [0, 1] per candidate after placing ``pod``; lower is tighter."""
    cpu_left = snapshot.cpu_free[candidates] - pod.cpu_milli
    gpu_left = snapshot.gpu_free[candidates].sum(axis=1) - pod.total_gpu_milli
    return np.asarray(
        0.5 * cpu_left / MAX_SPEC_CPU + 0.5 * gpu_left / MAX_SPEC_GPU, dtype=np.float64
    )


def normalise(scores: NDArray[np.int64]) -> NDArray[np.int64]:
    """Min-max to 0..100 in integers, as the Kubernetes framework's NormalizeScore."""
    low, high = scores.min(), scores.max()
    if high == low:
        return np.zeros_like(scores)
    return np.asarray((scores - low) * 100 // (high - low), dtype=np.int64)


class BestFit:
    name = "best-fit"

    def choose(
        self,
        snapshot: ClusterSnapshot,
        pod: PodRequest,
        candidates: NDArray[np.int64],
        rng: np.random.Generator,
    ) -> Placement:
        raw = np.floor((1.0 - leftover(snapshot, pod, candidates)) * 100).astype(np.int64)
        node = pick_max(normalise(raw), candidates, snapshot)
        if pod.is_shared:
            gpu = tightest_gpu(snapshot.gpu_free[node], pod.gpu_milli)
            return Placement(node, (gpu,), pod.gpu_milli)
        return whole_or_none(snapshot, pod, node)
