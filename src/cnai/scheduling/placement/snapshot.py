"""A vectorised snapshot of a cluster's free resources, the input of every placement policy.

Per node: free CPU (milli) and memory (MiB), free milli-GPU of each device (padded to
the widest node with zeros, which never fit a GPU request), its GPU model, and a
version. Versions come from one process-wide counter, so a (node, version) pair names
one node state across all snapshots: policies may memoise per-node scores on it and
stay pure.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement.placement import Placement
from cnai.scheduling.placement.request import PodRequest

MILLI = 1000  # keep in sync with request.MILLI
NO_MODEL = -1  # model id of a node without GPUs

_versions = itertools.count(1)

Int64Array = NDArray[np.int64]


def _fresh_versions(n: int) -> Int64Array:
    start = next(_versions)
    # Reserve n consecutive numbers so every node gets its own.
    for _ in range(n - 1):
        next(_versions)
    return np.arange(start, start + n, dtype=np.int64)


@dataclass(frozen=True)
class NodeSpec:
    """Capacity of one node, as a runtime or a trace describes it."""

    name: str
    cpu_milli: int
    memory_mib: int
    num_gpu: int = 0
    gpu_model: str = ""


@dataclass(frozen=True, eq=False)
class ClusterSnapshot:
    """Free resources of every node; arrays are indexed by node (and by GPU)."""

    names: tuple[str, ...]
    models: tuple[str, ...]  # model id -> name
    model_id: Int64Array  # (N,), NO_MODEL for CPU-only nodes
    cpu_capacity: Int64Array  # (N,)
    memory_capacity: Int64Array  # (N,)
    gpu_count: Int64Array  # (N,)
    cpu_free: Int64Array  # (N,)
    memory_free: Int64Array  # (N,)
    gpu_free: Int64Array  # (N, G) milli-GPU free per device; padding is 0
    version: Int64Array  # (N,)
    name_rank: Int64Array  # (N,) position of the node's name in sorted order: tie-breaks

    @classmethod
    def from_nodes(cls, nodes: Sequence[NodeSpec]) -> ClusterSnapshot:
        models = tuple(sorted({n.gpu_model for n in nodes if n.num_gpu > 0 and n.gpu_model}))
        index = {m: i for i, m in enumerate(models)}
        width = max([n.num_gpu for n in nodes] + [1])
        gpu_count = np.array([n.num_gpu for n in nodes], dtype=np.int64)
        gpu_free = np.where(np.arange(width)[None, :] < gpu_count[:, None], MILLI, 0)
        cpu = np.array([n.cpu_milli for n in nodes], dtype=np.int64)
        mem = np.array([n.memory_mib for n in nodes], dtype=np.int64)
        return cls(
            names=tuple(n.name for n in nodes),
            models=models,
            model_id=np.array(
                [index.get(n.gpu_model, NO_MODEL) if n.num_gpu else NO_MODEL for n in nodes],
                dtype=np.int64,
            ),
            cpu_capacity=cpu,
            memory_capacity=mem,
            gpu_count=gpu_count,
            cpu_free=cpu.copy(),
            memory_free=mem.copy(),
            gpu_free=gpu_free.astype(np.int64),
            version=_fresh_versions(len(nodes)),
            name_rank=np.argsort(np.argsort([n.name for n in nodes], kind="stable")).astype(
                np.int64
            ),
        )

    def __len__(self) -> int:
        return len(self.names)

    @property
    def gpu_capacity_milli(self) -> int:
        return int(self.gpu_count.sum()) * MILLI

    @property
    def gpu_allocated_milli(self) -> int:
        return self.gpu_capacity_milli - int(self.gpu_free.sum())

    def model_mask(self, pod: PodRequest) -> NDArray[np.bool_]:
        """Nodes whose GPU model the pod accepts (every node when it names none)."""
        if not pod.gpu_models:
            return np.ones(len(self), dtype=np.bool_)
        ids = [i for i, m in enumerate(self.models) if m in pod.gpu_models]
        return np.isin(self.model_id, np.array(ids, dtype=np.int64))

    def copy(self) -> ClusterSnapshot:
        return replace(
            self,
            cpu_free=self.cpu_free.copy(),
            memory_free=self.memory_free.copy(),
            gpu_free=self.gpu_free.copy(),
            version=self.version.copy(),
        )

    def bind(self, pod: PodRequest, placement: Placement) -> ClusterSnapshot:
        """A new snapshot with ``pod`` placed; this one is unchanged."""
        out = self.copy()
        out.bind_in_place(pod, placement)
        return out

    def bind_in_place(self, pod: PodRequest, placement: Placement) -> None:
        """Place ``pod`` by mutating this snapshot (the simulator's hot path)."""
        self._apply(pod, placement, sign=-1)

    def release_in_place(self, pod: PodRequest, placement: Placement) -> None:
        """Give back what ``pod`` held (a finished pod in replay)."""
        self._apply(pod, placement, sign=+1)

    def _apply(self, pod: PodRequest, placement: Placement, sign: int) -> None:
        n = placement.node
        self.cpu_free[n] += sign * pod.cpu_milli
        self.memory_free[n] += sign * pod.memory_mib
        for gpu in placement.gpus:
            self.gpu_free[n, gpu] += sign * pod.gpu_milli
        self.version[n] = next(_versions)
