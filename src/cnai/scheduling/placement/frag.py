"""GPU fragmentation of a node, measured against a target workload (FGD, ATC '23).

For each task type k of the workload, a node's free milli-GPU counts as fragment when
the node cannot run k at all (wrong model, too little CPU, not enough fitting devices,
or k needs no GPU); when it can, only the devices too small for k count. The node's
fragmentation is the expectation of that amount over the workload's task-type
distribution. FGD places each pod where this fragmentation grows least.

Vectorised over many node states at once: (M states) x (K types) x (G devices).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement.workload import TargetWorkload

CHUNK = 512  # node states per batch: bounds the (M, K, G) temporaries to a few MiB


def fragmentation(
    cpu_free: NDArray[np.int64],
    gpu_free: NDArray[np.int64],
    model_id: NDArray[np.int64],
    workload: TargetWorkload,
    access: NDArray[np.bool_],
) -> NDArray[np.float64]:
    """(M,) expected fragment (milli-GPU) of each node state; ``access`` from
    ``workload.access(snapshot.models)``."""
    out = np.empty(len(cpu_free), dtype=np.float64)
    for start in range(0, len(cpu_free), CHUNK):
        stop = start + CHUNK
        out[start:stop] = _fragmentation(
            cpu_free[start:stop], gpu_free[start:stop], model_id[start:stop], workload, access
        )
    return out


def _fragmentation(
    cpu_free: NDArray[np.int64],
    gpu_free: NDArray[np.int64],
    model_id: NDArray[np.int64],
    workload: TargetWorkload,
    access: NDArray[np.bool_],
) -> NDArray[np.float64]:
    total = gpu_free.sum(axis=1)  # (M,)
    fits = gpu_free[:, None, :] >= workload.gpu_milli[None, :, None]  # (M, K, G)
    fitting = fits.sum(axis=2)  # (M, K)
    too_small = np.where(fits, 0, gpu_free[:, None, :]).sum(axis=2)  # (M, K)
    runnable = (
        access[model_id]
        & (fitting >= workload.num_gpu[None, :])
        & (cpu_free[:, None] >= workload.cpu_milli[None, :])
        & (workload.gpu_milli > 0)[None, :]
    )
    amount = np.where(runnable, too_small, total[:, None])
    return np.asarray(amount @ workload.share, dtype=np.float64)
