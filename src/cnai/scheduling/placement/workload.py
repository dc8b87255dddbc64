"""The target workload: how popular each task type is, which FGD measures fragments against.

A task type is (CPU, milli-GPU per device, number of GPUs, accepted GPU models); memory
does not enter it (as in the FGD authors' simulator). The most popular types that
together make up ``threshold`` of the pods are kept and their shares renormalised; the
long tail is dropped, which keeps scoring cheap.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement.request import PodRequest

DEFAULT_POPULARITY_THRESHOLD = 0.95  # the FGD authors' experiments use 95%

TaskType = tuple[int, int, int, frozenset[str]]


@dataclass(frozen=True, eq=False)
class TargetWorkload:
    """Task types as parallel arrays, with their probability ``share`` (sums to 1)."""

    cpu_milli: NDArray[np.int64]  # (K,)
    gpu_milli: NDArray[np.int64]  # (K,) per device; 0 for CPU-only types
    num_gpu: NDArray[np.int64]  # (K,)
    models: tuple[frozenset[str], ...]  # (K,) empty: any model
    share: NDArray[np.float64]  # (K,)

    def __len__(self) -> int:
        return len(self.models)

    @classmethod
    def from_types(cls, types: Sequence[tuple[TaskType, float]]) -> TargetWorkload:
        weights = np.array([w for _, w in types], dtype=np.float64)
        return cls(
            cpu_milli=np.array([t[0] for t, _ in types], dtype=np.int64),
            gpu_milli=np.array([t[1] for t, _ in types], dtype=np.int64),
            num_gpu=np.array([t[2] for t, _ in types], dtype=np.int64),
            models=tuple(t[3] for t, _ in types),
            share=weights / weights.sum(),
        )

    @classmethod
    def from_pods(
        cls, pods: Iterable[PodRequest], threshold: float = DEFAULT_POPULARITY_THRESHOLD
    ) -> TargetWorkload:
        counts = Counter(p.shape for p in pods)
        if not counts:
            raise ValueError("the target workload needs at least one pod")
        # Most popular first; ties in a fixed order so runs are reproducible.
        ranked = sorted(
            counts.items(),
            key=lambda kv: (kv[1], kv[0][:3], "|".join(sorted(kv[0][3]))),
            reverse=True,
        )
        total = sum(counts.values())
        kept: list[tuple[TaskType, float]] = []
        cumulative = 0
        for shape, count in ranked:
            kept.append((shape, float(count)))
            cumulative += count
            if cumulative >= threshold * total:
                break
        return cls.from_types(kept)

    def access(self, models: tuple[str, ...]) -> NDArray[np.bool_]:
        """(len(models) + 1, K): may a node of model m run type k? The last row is for
        nodes without GPUs (index NO_MODEL = -1 lands there)."""
        out = np.zeros((len(models) + 1, len(self)), dtype=np.bool_)
        for k, allowed in enumerate(self.models):
            for m, name in enumerate(models):
                out[m, k] = not allowed or name in allowed
            out[-1, k] = not allowed
        return out
