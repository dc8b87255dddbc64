"""Gang placement: every pod of a gang gets a node and devices, or none does.

``place_gang(snapshot, pods, policy)`` returns one ``Placement`` per pod (in the order
given) or None when the whole gang does not fit now; the snapshot is never changed.

The aim is the fewest distinct nodes, then the policy's preference. Exact minimisation is
bin packing, so a greedy heuristic is used:

1. Identical pods form a group; groups go largest first (GPU, then CPU, then memory),
   as first-fit-decreasing packing does.
2. For a group, count on every node how many of its pods the node could hold now
   (CPU, memory, GPU model, and per device: whole GPUs need fully free devices, a
   fraction may share a device while the shares fit). The next node is the one that
   holds the most of the pods still to place (capped at that number), a node the gang
   already uses winning a tie (it adds no node), then the policy's own choice among
   the nodes still tied.
3. That node is filled with as many of the group's pods as it holds, each pod's
   devices chosen by the policy on that node (so fractional pods share devices the way
   the policy shares them); then back to 2 until the group is placed.

If some pod fits nowhere the answer is None and nothing is bound. ``allowed``, an
optional (N,) boolean node mask, restricts the gang to those nodes (a flavor's node
labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement.base import Policy
from cnai.scheduling.placement.fit import feasible
from cnai.scheduling.placement.placement import Placement
from cnai.scheduling.placement.request import MILLI, PodRequest
from cnai.scheduling.placement.snapshot import ClusterSnapshot

I64 = NDArray[np.int64]


def capacity(snapshot: ClusterSnapshot, pod: PodRequest) -> I64:
    """(N,) how many copies of ``pod`` each node could hold now."""
    big = np.iinfo(np.int64).max
    n = len(snapshot)
    cpu = snapshot.cpu_free // pod.cpu_milli if pod.cpu_milli else np.full(n, big)
    mem = snapshot.memory_free // pod.memory_mib if pod.memory_mib else np.full(n, big)
    count = np.minimum(cpu, mem)
    if pod.num_gpu:
        if pod.gpu_milli == MILLI:
            gpus = (snapshot.gpu_free == MILLI).sum(axis=1) // pod.num_gpu
        else:  # a fraction of one device: each device holds its own share count
            gpus = (snapshot.gpu_free // pod.gpu_milli).sum(axis=1)
        count = np.where(snapshot.model_mask(pod), np.minimum(count, gpus), 0)
    return np.asarray(np.maximum(count, 0), dtype=np.int64)


def place_gang(
    snapshot: ClusterSnapshot,
    pods: Sequence[PodRequest],
    policy: Policy,
    rng: np.random.Generator | None = None,
    allowed: NDArray[np.bool_] | None = None,
) -> list[Placement] | None:
    """Placements for all of ``pods`` (same order), or None if the gang does not fit
    (on the nodes of ``allowed``, when given)."""
    rng = rng or np.random.default_rng(0)
    work = snapshot.copy()
    used = np.zeros(len(work), dtype=np.bool_)
    out: list[Placement | None] = [None] * len(pods)
    groups: dict[PodRequest, list[int]] = {}
    for i, pod in enumerate(pods):
        groups.setdefault(pod, []).append(i)
    order = sorted(
        groups,
        key=lambda p: (p.total_gpu_milli, p.cpu_milli, p.memory_mib),
        reverse=True,
    )
    for pod in order:
        todo = list(groups[pod])
        while todo:
            holds = np.minimum(capacity(work, pod), len(todo))
            if allowed is not None:
                holds = np.where(allowed, holds, 0)
            if holds.max() <= 0:
                return None
            # Most pods first, then a node the gang already uses, then the policy.
            rank = holds * 2 + used
            tied = np.flatnonzero(rank == rank.max()).astype(np.int64)
            node = policy.choose(work, pod, tied, rng).node
            placed = 0
            for _ in range(int(holds[node])):
                if not feasible(work, pod)[node]:  # the count is exact; defensive only
                    break
                found = policy.choose(work, pod, np.array([node], dtype=np.int64), rng)
                work.bind_in_place(pod, found)
                out[todo.pop(0)] = found
                placed += 1
            if not placed:
                return None
            used[node] = True
    return [p for p in out if p is not None]
