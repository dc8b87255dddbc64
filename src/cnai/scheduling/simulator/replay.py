"""Replay mode: pods arrive at their trace creation times and run for their trace
durations on a simulated clock; the same placement decides where each one goes.

1. Events in time order: completions first (they free resources), then arrivals.
2. A pod is placed on arrival if it fits; otherwise it queues. Queued pods are retried,
   in arrival order, whenever a pod finishes (backfill: a small pod may pass a big one
   that still waits). A pod that no empty node could host is dropped as unschedulable.
3. Reported: queueing delay (start - arrival) and JCT (finish - arrival), p50/p99, and the
   time-weighted GPU allocation.
"""

from __future__ import annotations

import heapq
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from cnai.scheduling.placement import (
    WORKLOAD_POLICIES,
    ClusterSnapshot,
    NodeSpec,
    Placement,
    PodRequest,
    Policy,
    TargetWorkload,
    make_policy,
    place,
)
from cnai.scheduling.placement.fit import could_ever_fit
from cnai.scheduling.simulator.trace import PodTrace, renamed


@dataclass(frozen=True, eq=False)
class ReplayResult:
    policy: str
    seed: int
    capacity_milli: int
    arrival: NDArray[np.int64]  # per pod, seconds
    start: NDArray[np.int64]  # -1: never started (unschedulable)
    finish: NDArray[np.int64]
    timeline: NDArray[np.int64]  # (T, 2): time, allocated milli-GPU from then on
    wall_s: float

    @property
    def started(self) -> NDArray[np.bool_]:
        return self.start >= 0

    @property
    def unschedulable(self) -> int:
        return int((~self.started).sum())

    def percentiles(self) -> dict[str, float]:
        done = self.started
        delay = (self.start - self.arrival)[done]
        jct = (self.finish - self.arrival)[done]
        if not done.any():
            return {}
        return {
            "queue_delay_p50_s": float(np.percentile(delay, 50)),
            "queue_delay_p99_s": float(np.percentile(delay, 99)),
            "jct_p50_s": float(np.percentile(jct, 50)),
            "jct_p99_s": float(np.percentile(jct, 99)),
        }

    @property
    def mean_allocated_milli(self) -> float:
        """Time-weighted allocated milli-GPU from the first arrival to the last finish."""
        times, alloc = self.timeline[:, 0], self.timeline[:, 1]
        spans = np.diff(times)
        if len(spans) == 0 or spans.sum() == 0:
            return float(alloc[-1]) if len(alloc) else 0.0
        return float((alloc[:-1] * spans).sum() / spans.sum())

    @property
    def gpu_allocation_ratio(self) -> float:
        return self.mean_allocated_milli / self.capacity_milli

    @property
    def unallocated_gpus(self) -> float:
        return (self.capacity_milli - self.mean_allocated_milli) / 1000


def durations(trace: PodTrace) -> NDArray[np.int64]:
    """Run time per pod: deletion minus scheduled time (creation when unscheduled)."""
    began = np.where(trace.scheduled > 0, trace.scheduled, trace.creation)
    return np.maximum(trace.deletion - began, 0)


class _Cluster:
    """The mutable shell around the pure placement call."""

    def __init__(self, snapshot: ClusterSnapshot, policy: Policy, rng: np.random.Generator):
        self.snapshot, self.policy, self.rng = snapshot, policy, rng
        self.allocated = 0

    def try_place(self, pod: PodRequest) -> Placement | None:
        placement = place(self.snapshot, pod, self.policy, self.rng)
        if placement is not None:
            self.snapshot.bind_in_place(pod, placement)
            self.allocated += pod.total_gpu_milli
        return placement

    def release(self, pod: PodRequest, placement: Placement) -> None:
        self.snapshot.release_in_place(pod, placement)
        self.allocated -= pod.total_gpu_milli


def run_replay(nodes: list[NodeSpec], trace: PodTrace, policy: str, seed: int = 42) -> ReplayResult:
    started_at = time.perf_counter()
    snapshot = ClusterSnapshot.from_nodes(renamed(nodes, seed))
    workload = TargetWorkload.from_pods(trace.requests) if policy in WORKLOAD_POLICIES else None
    cluster = _Cluster(snapshot, make_policy(policy, workload), np.random.default_rng([seed, 1]))
    n = len(trace)
    run_for = durations(trace)
    start = np.full(n, -1, dtype=np.int64)
    finish = np.full(n, -1, dtype=np.int64)
    running: list[tuple[int, int, Placement]] = []  # heap of (finish, pod index, placement)
    waiting: deque[int] = deque()
    timeline: list[tuple[int, int]] = []

    def begin(i: int, now: int, placement: Placement) -> None:
        start[i], finish[i] = now, now + int(run_for[i])
        heapq.heappush(running, (int(finish[i]), i, placement))

    def drain_queue(now: int) -> None:
        failed: set[PodRequest] = set()  # an identical request that failed fails again
        for _ in range(len(waiting)):
            i = waiting.popleft()
            pod = trace.requests[i]
            placement = None if pod in failed else cluster.try_place(pod)
            if placement is None:
                failed.add(pod)
                waiting.append(i)
            else:
                begin(i, now, placement)

    order = np.argsort(trace.creation, kind="stable")
    for i in (int(x) for x in order):
        now = int(trace.creation[i])
        while running and running[0][0] <= now:
            at, j, placement = heapq.heappop(running)
            cluster.release(trace.requests[j], placement)
            if not running or running[0][0] != at:
                drain_queue(at)
            timeline.append((at, cluster.allocated))
        pod = trace.requests[i]
        if not could_ever_fit(snapshot, pod):
            continue
        placed = cluster.try_place(pod)
        if placed is None:
            waiting.append(i)
        else:
            begin(i, now, placed)
        timeline.append((now, cluster.allocated))
    while running:
        at, j, placement = heapq.heappop(running)
        cluster.release(trace.requests[j], placement)
        if not running or running[0][0] != at:
            drain_queue(at)
        timeline.append((at, cluster.allocated))
    return ReplayResult(
        policy=policy,
        seed=seed,
        capacity_milli=snapshot.gpu_capacity_milli,
        arrival=trace.creation.copy(),
        start=start,
        finish=finish,
        timeline=np.array(timeline, dtype=np.int64).reshape(-1, 2),
        wall_s=time.perf_counter() - started_at,
    )
