"""Fragmentation Gradient Descent (Weng et al., "Beware of Fragmentation", ATC '23).

Place each pod on the node (and device) where the node's expected GPU fragment, measured
against the target workload (``frag.py``), grows least. As in the authors' simulator the
reduction of fragment d (milli-GPU) becomes an integer score ``int(sigmoid(d/1000)*100)``;
the node with the highest score wins, ties to the node whose name sorts first (the
authors' scheduler does that, ``selectHost`` in their vendored ``generic_scheduler.go``,
not stock Kubernetes' random pick); on the chosen node a fractional pod takes the first
device with the highest score. Their simulator renames every node with a seeded random
prefix before a run, so in their experiments "first by name" is first in a random
order; cnai's simulator does the same (``simulator.trace.renamed``).

Speed: a node's score for a pod depends only on the node's state and the pod's shape, so
scores are memoised per (shape, node version) and only nodes changed since the last pod
of that shape are rescored. Identical node states are scored once (most of a fresh
cluster is a few hundred copies of a dozen node types).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement.base import pick_max, whole_or_none
from cnai.scheduling.placement.frag import fragmentation
from cnai.scheduling.placement.placement import Placement
from cnai.scheduling.placement.request import PodRequest
from cnai.scheduling.placement.snapshot import ClusterSnapshot
from cnai.scheduling.placement.workload import TargetWorkload

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass
class _Scores:
    """Memoised per-node results for one pod shape; valid where version matches."""

    version: I64
    delta: F64  # fragment reduction of the node's best device choice
    key: F64  # what the policy ranks nodes by
    gpu: I64  # chosen device for a fractional pod, -1 otherwise


def quantize(delta: F64) -> F64:
    """The authors' integer score: ``int64(sigmoid(delta / 1000) * 100)``."""
    return np.floor(100.0 / (1.0 + np.exp(-delta / 1000.0)))


@dataclass
class FGD:
    """FGD as the authors' simulator runs it."""

    workload: TargetWorkload
    name: str = "fgd"
    _access: dict[tuple[str, ...], NDArray[np.bool_]] = field(default_factory=dict, repr=False)
    _memo: dict[tuple[object, ...], _Scores] = field(default_factory=dict, repr=False)

    def choose(
        self,
        snapshot: ClusterSnapshot,
        pod: PodRequest,
        candidates: I64,
        rng: np.random.Generator,
    ) -> Placement:
        scores = self.scores(snapshot, pod, candidates)
        node = pick_max(self.node_key(snapshot, pod, candidates, scores), candidates, snapshot)
        if pod.is_shared:
            return Placement(node, (int(scores.gpu[node]),), pod.gpu_milli)
        return whole_or_none(snapshot, pod, node)

    # Hooks that a variant overrides (keep the FGD defaults the authors' behaviour).
    def device_key(self, delta: F64, gpu_free: I64) -> F64:
        """Rank of each device of a node for a fractional pod; the first max wins."""
        return quantize(delta)

    def node_key(
        self, snapshot: ClusterSnapshot, pod: PodRequest, candidates: I64, scores: _Scores
    ) -> F64:
        return scores.key[candidates]

    def node_score(self, delta: F64) -> F64:
        return quantize(delta)

    def scores(self, snapshot: ClusterSnapshot, pod: PodRequest, candidates: I64) -> _Scores:
        """Per-node scores for ``pod``, fresh for every candidate."""
        n = len(snapshot)
        memo = self._memo.get(pod.shape)
        if memo is None or len(memo.version) != n:
            memo = _Scores(
                np.full(n, -1, np.int64), np.zeros(n), np.zeros(n), np.full(n, -1, np.int64)
            )
            self._memo[pod.shape] = memo
        stale = candidates[memo.version[candidates] != snapshot.version[candidates]]
        if len(stale):
            delta, gpu = self._score_nodes(snapshot, pod, stale)
            memo.version[stale] = snapshot.version[stale]
            memo.delta[stale] = delta
            memo.key[stale] = self.node_score(delta)
            memo.gpu[stale] = gpu
        return memo

    def _access_for(self, models: tuple[str, ...]) -> NDArray[np.bool_]:
        if models not in self._access:
            self._access[models] = self.workload.access(models)
        return self._access[models]

    def _score_nodes(
        self, snapshot: ClusterSnapshot, pod: PodRequest, nodes: I64
    ) -> tuple[F64, I64]:
        """Fragment reduction and device choice for each of ``nodes``."""
        access = self._access_for(snapshot.models)
        gpu_free = snapshot.gpu_free[nodes]
        # Sort each node's devices (largest free first) so equal states dedupe.
        order = np.argsort(-gpu_free, axis=1, kind="stable")
        sorted_free = np.take_along_axis(gpu_free, order, axis=1)
        rows = np.column_stack([snapshot.model_id[nodes], snapshot.cpu_free[nodes], sorted_free])
        states, inverse = np.unique(rows, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        model, cpu, free = states[:, 0], states[:, 1], states[:, 2:]
        before = fragmentation(cpu, free, model, self.workload, access)
        if not pod.is_shared:
            after_free = free.copy()
            after_free[:, : pod.num_gpu] = 0  # sorted: the fully free devices come first
            after = fragmentation(cpu - pod.cpu_milli, after_free, model, self.workload, access)
            return (before - after)[inverse], np.full(len(nodes), -1, np.int64)
        width = free.shape[1]
        trial = np.repeat(free[:, None, :], width, axis=1)  # (U, device taken, G)
        trial[:, np.arange(width), np.arange(width)] -= pod.gpu_milli
        after = fragmentation(
            np.repeat(cpu - pod.cpu_milli, width),
            trial.reshape(-1, width),
            np.repeat(model, width),
            self.workload,
            access,
        ).reshape(-1, width)
        delta_sorted = before[:, None] - after
        delta = np.empty_like(delta_sorted[inverse])
        np.put_along_axis(delta, order, delta_sorted[inverse], axis=1)
        key = np.where(gpu_free >= pod.gpu_milli, self.device_key(delta, gpu_free), -np.inf)
        gpu = np.argmax(key, axis=1).astype(np.int64)
        return np.take_along_axis(delta, gpu[:, None], axis=1)[:, 0], gpu
