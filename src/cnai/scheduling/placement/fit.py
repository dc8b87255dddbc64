"""Fit rules: which nodes can host a pod at all, and which devices it may use there.

- CPU and memory: the free amount must cover the request.
- GPU model: the node's model must be one the pod accepts (flavors narrow this).
- A fractional GPU needs one device with at least that much milli-GPU free; it shares
  that device with other fractional pods.
- Whole GPUs (1, 2, 4, 8) need that many fully free devices on one node.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement.request import MILLI, PodRequest
from cnai.scheduling.placement.snapshot import ClusterSnapshot

BoolArray = NDArray[np.bool_]


def gpu_fits(gpu_free: NDArray[np.int64], pod: PodRequest) -> BoolArray:
    """(..., G) -> (..., G): devices that can take the pod's per-device share."""
    return gpu_free >= pod.gpu_milli


def feasible(snapshot: ClusterSnapshot, pod: PodRequest) -> BoolArray:
    """(N,) mask of nodes that can host ``pod`` now."""
    ok = (snapshot.cpu_free >= pod.cpu_milli) & (snapshot.memory_free >= pod.memory_mib)
    if pod.num_gpu == 0:
        return ok
    ok &= snapshot.model_mask(pod)
    ok &= gpu_fits(snapshot.gpu_free, pod).sum(axis=1) >= pod.num_gpu
    return ok


def could_ever_fit(snapshot: ClusterSnapshot, pod: PodRequest) -> bool:
    """Whether some node, were it empty, could host ``pod`` (else it waits forever)."""
    ok = (snapshot.cpu_capacity >= pod.cpu_milli) & (snapshot.memory_capacity >= pod.memory_mib)
    if pod.num_gpu:
        ok &= snapshot.model_mask(pod) & (snapshot.gpu_count >= pod.num_gpu)
    return bool(ok.any())


def first_whole_gpus(gpu_free: NDArray[np.int64], count: int) -> tuple[int, ...]:
    """The first ``count`` fully free devices of one node, by index."""
    return tuple(int(i) for i in np.flatnonzero(gpu_free == MILLI)[:count])


def tightest_gpu(gpu_free: NDArray[np.int64], milli: int) -> int:
    """The device with the least free milli-GPU that still fits ``milli`` (first on ties)."""
    left = np.where(gpu_free >= milli, gpu_free, np.iinfo(np.int64).max)
    return int(np.argmin(left))


def first_gpu(gpu_free: NDArray[np.int64], milli: int) -> int:
    return int(np.argmax(gpu_free >= milli))
