"""Saturate mode: the FGD authors' evaluation, which fills the cluster and never drains it.

1. Arrivals: the trace's pods (shuffled by the seed, as the authors' run scripts do with
   ``--shuffle-pod=true``; ``shuffle=False`` keeps trace order), then pods drawn
   uniformly with replacement from the trace, until arrived GPU requests reach
   ``ratio`` (130%) of cluster GPU capacity. The first pod that would pass it ends the
   arrivals, even part-way through the trace itself.
2. Each pod is placed on arrival with the policy; a pod that fits nowhere fails and is
   skipped. Nothing leaves.
3. Reported: allocated milli-GPU after each arrival (the allocation-ratio curve against
   arrived demand) and the GPUs left unallocated at the end.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement import (
    WORKLOAD_POLICIES,
    ClusterSnapshot,
    NodeSpec,
    TargetWorkload,
    make_policy,
    place,
)
from cnai.scheduling.simulator.trace import PodTrace, renamed

DEFAULT_RATIO = 1.3
_DRAW_BATCH = 4096


@dataclass(frozen=True, eq=False)
class SaturateResult:
    policy: str
    seed: int
    capacity_milli: int
    arrived_milli: NDArray[np.int64]  # cumulative requested milli-GPU after each arrival
    allocated_milli: NDArray[np.int64]  # allocated milli-GPU after each arrival
    failed: int
    wall_s: float

    @property
    def arrived(self) -> int:
        return len(self.arrived_milli)

    @property
    def final_allocated_milli(self) -> int:
        return int(self.allocated_milli[-1]) if self.arrived else 0

    @property
    def gpu_allocation_ratio(self) -> float:
        return self.final_allocated_milli / self.capacity_milli

    @property
    def unallocated_gpus(self) -> float:
        """Capacity minus allocated GPU, fractional shares summed."""
        return (self.capacity_milli - self.final_allocated_milli) / 1000

    def curve(self, step_pct: int = 1) -> list[tuple[int, float]]:
        """(arrived demand in % of capacity, allocation ratio in %) at each step: the
        allocation after the last arrival whose cumulative demand is within it."""
        demand_pct = self.arrived_milli * 100 / self.capacity_milli
        top = int(np.ceil(demand_pct[-1])) if self.arrived else 0
        points = []
        for pct in range(0, top + 1, step_pct):
            upto = int(np.searchsorted(demand_pct, pct, side="right"))
            alloc = self.allocated_milli[upto - 1] if upto else 0
            points.append((pct, float(alloc) * 100 / self.capacity_milli))
        return points


def arrival_order(
    demand: NDArray[np.int64], target_milli: float, rng: np.random.Generator, shuffle: bool
) -> NDArray[np.int64]:
    """Trace indices in arrival order, cut where cumulative demand would pass the target."""
    base = rng.permutation(len(demand)) if shuffle else np.arange(len(demand))
    chunks = [base]
    total = 0
    while True:
        cumulative = total + np.cumsum(demand[chunks[-1]])
        over = np.flatnonzero(cumulative > target_milli)
        if len(over):
            chunks[-1] = chunks[-1][: over[0]]
            break
        total = int(cumulative[-1]) if len(cumulative) else total
        chunks.append(rng.integers(len(demand), size=_DRAW_BATCH))
    return np.concatenate(chunks).astype(np.int64)


def run_saturate(
    nodes: list[NodeSpec],
    trace: PodTrace,
    policy: str,
    seed: int = 42,
    ratio: float = DEFAULT_RATIO,
    shuffle: bool = True,
) -> SaturateResult:
    """One saturate run; the same seed gives the same arrivals and the same node names
    (:func:`~.trace.renamed`: ties between nodes go as in the authors' runs) for every
    policy."""
    started = time.perf_counter()
    snapshot = ClusterSnapshot.from_nodes(renamed(nodes, seed))
    capacity = snapshot.gpu_capacity_milli
    workload = TargetWorkload.from_pods(trace.requests) if policy in WORKLOAD_POLICIES else None
    chosen = make_policy(policy, workload)
    demand = trace.gpu_milli
    order = arrival_order(demand, ratio * capacity, np.random.default_rng([seed, 0]), shuffle)
    rng = np.random.default_rng([seed, 1])
    allocated = np.empty(len(order), dtype=np.int64)
    now, failed = 0, 0
    for i, index in enumerate(order):
        pod = trace.requests[index]
        placement = place(snapshot, pod, chosen, rng)
        if placement is None:
            failed += 1
        else:
            snapshot.bind_in_place(pod, placement)
            now += pod.total_gpu_milli
        allocated[i] = now
    return SaturateResult(
        policy=policy,
        seed=seed,
        capacity_milli=capacity,
        arrived_milli=np.cumsum(demand[order]),
        allocated_milli=allocated,
        failed=failed,
        wall_s=time.perf_counter() - started,
    )
