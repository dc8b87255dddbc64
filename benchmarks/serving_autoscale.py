"""Serving autoscaler: replica-seconds used, and requests that wait over 100 ms, for cnai's
autoscaler (Knative KPA semantics) against a fixed pool sized for the peak.

**Load.** The shape of the real request rate of Alibaba's GenAI serving trace (2026,
``qps.tar.gz``: ``qps.csv``, columns timestamp_anon, value, container_ip, request_type):
every container's samples and both request types (generative and API requests both
reach the gateway), summed per sampling instant. The samples lie on one 57 s grid (the
"once a minute" of the README): summing per calendar minute would put two instants into
one minute in every nineteenth and make the peak an artefact of the binning (16.2 against
9.6 anonymised units), so the sum is per instant, at its real time. An instant with no
sample counts as no traffic (the metrics, ``*.log.*.qps``, are counted from request
logs: no request, no sample; 265 of the 1,410 instants, the longest gap 57 minutes).
The series is scaled so its peak is ``PEAK_RPS`` (2,000 requests/s), interpolated
linearly to a rate per second, and requests arrive as a Poisson process at that rate
(drawn per 10 ms step from a seeded numpy Generator: the same law as Poisson counts per
second spread uniformly over the second). About 22 hours, 42 million requests (521 per
second on average).

**Queueing model.** One FIFO queue shared by the pool (the gateway's queue); each ready
replica serves ``CAPACITY_RPS`` (500) requests/s, i.e. 5 per 10 ms step, and the step is
the time resolution. A request's wait is from its arrival to the start of its service,
in whole steps: it waited longer than 100 ms if it was not served within 10 steps of
the step it arrived in. Service itself takes no time in this model (the target latency
is what a replica gives at that rate), except that for the concurrency metric a request
counts as in flight for 2 ms (1 / 500 s) while served, so a replica busy 70% of the time
reports 0.7. A replica that is asked for serves ``STARTUP_S`` (2 s) later; one removed
stops at once (its queue is the shared one, so nothing is lost); the removed are the
starting ones first, then the newest. Replica-seconds count every replica from when it
is asked for (starting included) until it is removed.

**Autoscaler.** cnai's :func:`cnai.serving.autoscaler.decide`, every 2 s (Knative's
tick), with the window the gateway fills each second: requests counted (``rps``) or the
mean of total requests in flight, queued or held included (``concurrency``). While no
replica is alive, the first request pokes the scaler at once (Knative's activator does
the same). The pool starts with the replicas the first second's rate needs. Targets
are 70% of a replica's capacity (Knative's default target utilization): 350 rps, or a
concurrency of 0.7.

**Baselines.** A fixed pool of ceil(peak / 500) replicas (4 on the trace), and one with
the same 70% headroom the autoscaler aims for, ceil(peak / 350) (6 on the trace).

**Burst.** 400 requests/s for 300 s, 1,600 (4x) for 20 s, 400 again for
280 s; the fixed pools are sized for the burst (4 and 5).

Printed: per scenario and policy, the replica-seconds, the share saved against the
fixed pool sized for the peak, the share of requests that waited longer than 100 ms
(and 1 s), the mean wait, and the scale-ups. Results go to
benchmarks/results/serving_autoscale.json with the command and the date. Results:
docs/benchmarks.md.

Run: ``.venv/bin/python benchmarks/serving_autoscale.py`` (``--seed N``, ``--data
PATH``, ``--scenarios trace,burst``). About 30 s on one core.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import platform
import sys
import tarfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from cnai.serving.autoscaler import Metric, MetricWindow, ScalerSpec, ScalerState, decide
from common.provenance import code

ROOT = Path(__file__).resolve().parent.parent
DATA = Path("/work/shared/data/traces/alibaba-genai-2026/qps.tar.gz")
RESULTS = ROOT / "benchmarks" / "results" / "serving_autoscale.json"

PEAK_RPS = 2000.0
CAPACITY_RPS = 500.0  # one replica, at the target latency
TARGET_UTILIZATION = 0.7  # Knative's default: aim each replica at 70% of what it serves
STARTUP_S = 2.0
TICK_S = 2.0  # Knative's tick
STEP_S = 0.01
WAIT_LIMIT_S = 0.1
BURST_BASE_RPS = 400.0  # the burst scenario: 4x for 20 s from second 300, 600 s in all
BURST_FACTOR = 4.0
BURST_START_S = 300
BURST_LENGTH_S = 20
BURST_TOTAL_S = 600

STEPS_PER_S = round(1 / STEP_S)
PER_STEP = round(CAPACITY_RPS * STEP_S)  # requests a replica serves per step
TICK_STEPS = round(TICK_S / STEP_S)
STARTUP_STEPS = round(STARTUP_S / STEP_S)
BUSY_PER_SERVED = (1 / CAPACITY_RPS) / STEP_S  # step-fraction a served request is in flight

Ints = NDArray[np.int64]


@dataclass(frozen=True)
class Policy:
    """A fixed pool of ``replicas``, or cnai's autoscaler with ``spec``."""

    name: str
    replicas: int = 0
    spec: ScalerSpec | None = None


@dataclass
class Outcome:
    policy: str
    replica_s: float
    requests: int
    waited_over_100ms: int
    waited_over_1s: int
    mean_wait_ms: float
    scale_ups: int = 0
    cold_starts: int = 0  # scale-ups from zero replicas
    max_replicas: int = 0
    seconds_at_zero: float = 0.0
    wall_s: float = 0.0

    @property
    def late_share(self) -> float:
        return self.waited_over_100ms / self.requests if self.requests else 0.0


# --------------------------------------------------------------------------- load


def load_trace(path: Path) -> tuple[NDArray[np.float64], dict[str, Any]]:
    """The trace's total rate per sampling instant (all containers, both request types),
    on its 57 s grid with missing instants as zero, scaled to ``PEAK_RPS`` and
    interpolated to one rate per second."""
    with tarfile.open(path) as tar:
        member = tar.extractfile("qps.csv")
        assert member is not None
        rows = list(csv.DictReader(io.TextIOWrapper(member, encoding="utf-8")))
    stamps = np.array([float(r["timestamp_anon"]) for r in rows])
    values = np.array([float(r["value"]) for r in rows])
    instants = np.unique(stamps)
    grid_s = float(np.median(np.diff(instants)))
    index = np.rint((stamps - instants[0]) / grid_s).astype(np.int64)
    totals = np.bincount(index, weights=values)
    scaled = totals * (PEAK_RPS / totals.max())
    seconds = np.arange(math.floor(index.max() * grid_s) + 1, dtype=np.float64)
    rate = np.interp(seconds, np.arange(totals.size) * grid_s, scaled)
    info = {
        "rows": len(rows),
        "grid_s": grid_s,
        "instants": int(totals.size),
        "instants_without_samples": int((totals == 0).sum()),
        "hours": round(seconds.size / 3600, 2),
        "mean_rps": round(float(rate.mean()), 1),
        "peak_rps": PEAK_RPS,
    }
    return rate, info


def burst_rate() -> NDArray[np.float64]:
    rate = np.full(BURST_TOTAL_S, BURST_BASE_RPS)
    rate[BURST_START_S : BURST_START_S + BURST_LENGTH_S] *= BURST_FACTOR
    return rate


def arrivals(rate: NDArray[np.float64], rng: np.random.Generator) -> Ints:
    """Poisson arrivals per 10 ms step at the per-second ``rate``."""
    return rng.poisson(np.repeat(rate * STEP_S, STEPS_PER_S)).astype(np.int64)


# --------------------------------------------------------------------------- the queue


def serve(arrived: Ints, capacity: Ints | int, queued: int) -> tuple[Ints, Ints]:
    """One FIFO queue over steps: requests served per step and left queued after each,
    from ``queued`` waiting before the first. Lindley's recursion q_k = max(q_(k-1) +
    a_k - c_k, 0), vectorized: q_k = S_k - min(-q_0, min_(j<=k) S_j), S = cumsum(a - c)."""
    s = np.cumsum(arrived - capacity)
    left = s - np.minimum(np.minimum.accumulate(s), -queued)
    before = np.concatenate(([queued], left[:-1]))
    return before + arrived - left, left


def waited_longer(arrived: Ints, served: Ints, limit_s: float) -> int:
    """Requests (FIFO) served more than ``limit_s`` after the step they arrived in: those
    of step k numbered above the departures by step k + limit."""
    steps = round(limit_s / STEP_S)
    done = np.cumsum(arrived)
    gone = np.cumsum(served)
    gone_later = np.concatenate((gone[steps:], np.full(steps, gone[-1])))
    return int(np.clip(done - np.maximum(done - arrived, gone_later), 0, None).sum())


def outcome(name: str, arrived: Ints, served: Ints, left: Ints, replica_s: float) -> Outcome:
    requests = int(arrived.sum())
    return Outcome(
        policy=name,
        replica_s=replica_s,
        requests=requests,
        waited_over_100ms=waited_longer(arrived, served, WAIT_LIMIT_S),
        waited_over_1s=waited_longer(arrived, served, 1.0),
        mean_wait_ms=float(left.sum()) * STEP_S * 1000 / max(requests, 1),
    )


def run_fixed(arrived: Ints, replicas: int, name: str) -> Outcome:
    started = time.perf_counter()
    served, left = serve(arrived, replicas * PER_STEP, 0)
    result = outcome(name, arrived, served, left, replicas * arrived.size * STEP_S)
    result.max_replicas, result.wall_s = replicas, time.perf_counter() - started
    return result


# --------------------------------------------------------------------------- autoscaled


class Pool:
    """Replicas by the step they serve from (sorted), scaled as a Deployment would be."""

    def __init__(self, replicas: int) -> None:
        self.ready_at: list[int] = [0] * replicas
        self.scale_ups = self.cold_starts = 0
        self.most = replicas

    def ready(self, step: int) -> int:
        return sum(1 for k in self.ready_at if k <= step)

    def capacity(self, k0: int, k1: int) -> Ints | int:
        if not self.ready_at or self.ready_at[-1] <= k0:
            return len(self.ready_at) * PER_STEP
        at = np.asarray(self.ready_at)
        return np.searchsorted(at, np.arange(k0, k1), side="right").astype(np.int64) * PER_STEP

    def scale(self, desired: int, step: int) -> None:
        alive = len(self.ready_at)
        if desired > alive:
            self.scale_ups += 1
            self.cold_starts += alive == 0
            self.ready_at += [step + STARTUP_STEPS] * (desired - alive)
        del self.ready_at[desired:]  # the starting ones, then the newest
        self.most = max(self.most, desired)


def observe(window: MetricWindow, arrived: Ints, served: Ints, left: Ints, k0: int) -> None:
    """What the gateway records for steps k0.. : per second (or part of one), requests
    counted, or the mean of requests in flight (queued, or 2 ms each while served)."""
    steps = np.arange(k0, k0 + arrived.size)
    starts = np.flatnonzero((steps % STEPS_PER_S == 0) | (steps == k0))
    if window.metric is Metric.RPS:
        for start, count in zip(starts, np.add.reduceat(arrived, starts), strict=True):
            if count:
                window.add_requests((k0 + start) / STEPS_PER_S, int(count))
        return
    inflight = left + served * BUSY_PER_SERVED
    sizes = np.diff(np.append(starts, arrived.size))
    means = np.add.reduceat(inflight, starts) / sizes
    for start, mean in zip(starts, means, strict=True):
        window.record((k0 + start) / STEPS_PER_S, float(mean))


def run_autoscaled(arrived: Ints, spec: ScalerSpec, first_rps: float, name: str) -> Outcome:
    """Steps the queue between decisions (every tick, and at once when a request comes
    to a pool of none), each stretch vectorized."""
    started = time.perf_counter()
    n = arrived.size
    served, left = np.zeros(n, np.int64), np.zeros(n, np.int64)
    needed = math.ceil(first_rps / (CAPACITY_RPS * TARGET_UTILIZATION))  # whatever the metric
    pool = Pool(max(needed, spec.min_replicas))
    window, state = spec.window(), ScalerState()
    replica_steps = zero_steps = queued = k0 = 0
    tick = TICK_STEPS
    while k0 < n:
        # 1. The stretch to the next tick, or to the first request while none is alive.
        k1 = min(tick, n)
        if not pool.ready_at:
            hits = np.flatnonzero(arrived[k0:k1])
            k1 = k0 + int(hits[0]) + 1 if hits.size else k1
        # 2. Serve it, and let the gateway record what it saw.
        s, q = serve(arrived[k0:k1], pool.capacity(k0, k1), queued)
        served[k0:k1], left[k0:k1], queued = s, q, int(q[-1])
        observe(window, arrived[k0:k1], s, q, k0)
        replica_steps += len(pool.ready_at) * (k1 - k0)
        zero_steps += (k1 - k0) if not pool.ready_at else 0
        # 3. Decide, and scale.
        state, decision = decide(spec, state, window, pool.ready(k1), k1 / STEPS_PER_S)
        pool.scale(decision.desired, k1)
        tick += TICK_STEPS if k1 == tick else 0
        k0 = k1
    result = outcome(name, arrived, served, left, replica_steps * STEP_S)
    result.scale_ups, result.cold_starts, result.max_replicas = (
        pool.scale_ups,
        pool.cold_starts,
        pool.most,
    )
    result.seconds_at_zero = zero_steps * STEP_S
    result.wall_s = time.perf_counter() - started
    return result


# --------------------------------------------------------------------------- scenarios


def policies(peak_rps: float) -> list[Policy]:
    rps_target = CAPACITY_RPS * TARGET_UTILIZATION
    fixed = math.ceil(peak_rps / CAPACITY_RPS)
    headroom = math.ceil(peak_rps / rps_target)
    big = 4 * headroom  # maxReplicas: never the binding limit here
    return [
        Policy(f"fixed {fixed} (peak / {CAPACITY_RPS:.0f})", replicas=fixed),
        Policy(f"fixed {headroom} (peak / {rps_target:.0f})", replicas=headroom),
        *(
            Policy(
                f"cnai rps {rps_target:.0f}, min {low}",
                spec=ScalerSpec(Metric.RPS, rps_target, low, big),
            )
            for low in (0, 1)
        ),
        Policy(
            f"cnai concurrency {TARGET_UTILIZATION}, min 0",
            spec=ScalerSpec(Metric.CONCURRENCY, TARGET_UTILIZATION, 0, big),
        ),
    ]


def run_scenario(name: str, rate: NDArray[np.float64], seed: int) -> list[Outcome]:
    arrived = arrivals(rate, np.random.default_rng(seed))
    print(f"\n{name}: {rate.size / 3600:.2f} h, {int(arrived.sum()):,} requests", flush=True)
    rows = []
    for policy in policies(float(rate.max())):
        if policy.spec is None:
            row = run_fixed(arrived, policy.replicas, policy.name)
        else:
            row = run_autoscaled(arrived, policy.spec, float(rate[0]), policy.name)
        rows.append(row)
        print_row(row, rows[0])
    return rows


HEADER = (
    f"{'policy':<28} {'replica-s':>9} {'saved':>6} {'waited >100 ms':>17} {'>1 s':>6} "
    f"{'mean wait':>9} {'ups':>4} {'cold':>4} {'max':>3} {'wall':>5}"
)


def print_row(row: Outcome, fixed: Outcome) -> None:
    """One policy; ``saved``: replica-seconds saved against the first (fixed) row."""
    if row is fixed:
        print(HEADER)
    saved = 1 - row.replica_s / fixed.replica_s
    late = f"{row.late_share:.4%} ({row.waited_over_100ms})"
    print(
        f"{row.policy:<28} {row.replica_s:>9,.0f} {saved:>6.1%} {late:>17} "
        f"{row.waited_over_1s:>6} {row.mean_wait_ms:>7.2f}ms {row.scale_ups:>4} "
        f"{row.cold_starts:>4} {row.max_replicas:>3} {row.wall_s:>4.1f}s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--scenarios", default="trace,burst")
    args = parser.parse_args()
    wanted = args.scenarios.split(",")
    settings = {
        "peak_rps": PEAK_RPS,
        "capacity_rps": CAPACITY_RPS,
        "target_utilization": TARGET_UTILIZATION,
        "startup_s": STARTUP_S,
        "tick_s": TICK_S,
        "step_s": STEP_S,
        "burst": {
            "base_rps": BURST_BASE_RPS,
            "factor": BURST_FACTOR,
            "start_s": BURST_START_S,
            "length_s": BURST_LENGTH_S,
            "total_s": BURST_TOTAL_S,
        },
        "seed": args.seed,
    }
    report: dict[str, Any] = {
        "command": " ".join(["python", "benchmarks/serving_autoscale.py", *sys.argv[1:]]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": code(),
        "python": platform.python_version(),
        "settings": settings,
        "scenarios": {},
    }
    if "trace" in wanted:
        rate, info = load_trace(args.data)
        print(f"trace {args.data.name}: {info}")
        rows = run_scenario("trace", rate, args.seed)
        report["scenarios"]["trace"] = {"trace": info, "rows": [asdict(r) for r in rows]}
    if "burst" in wanted:
        rows = run_scenario("burst", burst_rate(), args.seed)
        report["scenarios"]["burst"] = {"rows": [asdict(r) for r in rows]}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1))
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
