"""The InferenceService autoscaler: Knative's KPA as a pure function over request metrics.

The gateway feeds a :class:`MetricWindow` (the total concurrency it sees, or the requests
it counts, per second, requests it holds while no replica is ready included); every tick
(2 s) the controller calls :func:`decide` with the window, the replicas that are ready,
the :class:`ScalerState` the previous call returned and the time, and sets the replica
count it answers. Nothing here reads a clock or does I/O: the same code runs in the
controller and in the trace replay of ``benchmarks/serving_autoscale.py``.

The rules (Knative's KPA, docs/serving.md "Autoscaling"):

1. stable: desired = ceil(average over the stable window (60 s) / target per replica);
2. panic: once ceil(panic-window (6 s) average / target) reaches ``panic_threshold`` (2x)
   times the ready replicas (at least 1), desired follows the panic window and never
   goes down (the most it asked for since panic began, from no fewer than the replicas
   ready then); panic ends a stable window after the condition last held;
3. rate limits per decision, relative to the ready replicas: up to at most
   ``max_scale_up_rate`` (1000x, at least 1 replica), down to no fewer than
   ready / ``max_scale_down_rate`` (2x);
4. zero: only with ``min_replicas`` 0, and only once no traffic was seen for the stable
   window plus ``scale_to_zero_grace_s`` (30 s); until then at least 1. A scaler's first
   decision counts as traffic, so a new service or a restarted controller waits the full
   time. Any request seen in the panic window gives at least ``activation_scale``
   replicas (from zero: at once, the gateway holding the request meanwhile);
5. the result is clamped to [``min_replicas``, ``max_replicas``].

Where this differs from Knative: scale-to-zero is decided here from the time of the last
traffic (Knative's reconciler decides it from the PodAutoscaler's Active condition and
probes the activator); window averages weight the partial seconds at both ends of a
window by their overlap (Knative averages whole one-second buckets); there is no
scale-down delay, target burst capacity or initial scale (the controller's business).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

_EPS = 1e-9  # ceil(x / target) of an x that is a whole multiple of target up to rounding


class Metric(StrEnum):
    """What the autoscaler scales on: the total requests in flight (queued, held by the
    gateway, or being served) averaged over time, or requests arriving per second."""

    CONCURRENCY = "concurrency"
    RPS = "rps"


class Reason(StrEnum):
    """Why :func:`decide` chose its replica count."""

    STABLE = "Stable"  # the stable-window average over the target
    PANIC = "Panic"  # panic mode: the panic window, never scaling down
    SCALE_UP_LIMITED = "ScaleUpLimited"  # held to max_scale_up_rate x ready
    SCALE_DOWN_LIMITED = "ScaleDownLimited"  # held to ready / max_scale_down_rate
    ACTIVATING = "Activating"  # traffic while no replica is ready
    IDLE = "Idle"  # no traffic: 1 replica until the scale-to-zero grace period passes
    SCALED_TO_ZERO = "ScaledToZero"
    AT_MIN_REPLICAS = "AtMinReplicas"
    AT_MAX_REPLICAS = "AtMaxReplicas"


class MetricWindow:
    """Per-second buckets of one metric, keeping only the last ``seconds`` (+2) seconds.

    For ``concurrency``, :meth:`record` samples the total concurrency; a second's bucket
    holds the mean of its samples (sum per-replica reports before recording them). For
    ``rps``, :meth:`add_requests` counts requests; a second's bucket holds their count.
    Records should come in time order; one older than the kept seconds is dropped.
    """

    def __init__(self, metric: Metric, seconds: float = 60.0) -> None:
        self.metric = metric
        self.size = math.ceil(seconds) + 2  # a window of N s touches N + 1 buckets
        self._second = [-1] * self.size  # which second each slot holds; -1: none
        self._sum = [0.0] * self.size
        self._count = [0] * self.size
        self._newest = -1
        self._first: int | None = None  # the first second that was recorded
        self.last_active: float | None = None  # the latest record with a nonzero value

    def record(self, now: float, value: float) -> None:
        """One sample of the total concurrency at ``now``."""
        if self.metric is not Metric.CONCURRENCY:
            raise ValueError(f"record() samples concurrency; this window counts {self.metric}")
        self._add(now, value)

    def add_requests(self, now: float, n: int = 1) -> None:
        """``n`` requests arrived at ``now``."""
        if self.metric is not Metric.RPS:
            raise ValueError(f"add_requests() counts rps; this window samples {self.metric}")
        self._add(now, float(n))

    def _add(self, now: float, value: float) -> None:
        second = math.floor(now)
        if second <= self._newest - self.size:
            return
        slot = second % self.size
        if self._second[slot] != second:
            self._second[slot], self._sum[slot], self._count[slot] = second, 0.0, 0
        self._sum[slot] += value
        self._count[slot] += 1
        self._newest = max(self._newest, second)
        if self._first is None or second < self._first:
            self._first = second
        if value > 0 and (self.last_active is None or now > self.last_active):
            self.last_active = now

    def _bucket(self, second: int) -> float:
        """The bucket's value: the mean sample (concurrency) or the count (rps); 0 if none."""
        slot = second % self.size
        if self._second[slot] != second or not self._count[slot]:
            return 0.0
        if self.metric is Metric.CONCURRENCY:
            return self._sum[slot] / self._count[slot]
        return self._sum[slot]

    def average(self, now: float, seconds: float) -> float:
        """The metric's average over ``[now - seconds, now]``: mean concurrency, or
        requests per second. A partial oldest second counts for its overlap; the current
        second's requests count whole (they all arrived by ``now``). Before ``seconds``
        of history exist, the average is over the history (at least one second), as
        Knative's is, so a new service is not under-scaled."""
        if self._first is None:
            return 0.0
        if not 1 <= seconds <= self.size - 2:
            raise ValueError(f"a window of {seconds} s: this one keeps {self.size - 2} s")
        start = max(now - seconds, float(self._first))
        span = max(now - start, 1.0)
        total = 0.0
        for second in range(math.floor(start), math.floor(now) + 1):
            value = self._bucket(second)
            if value:
                total += value * self._weight(second, start, now)
        return total / span

    def _weight(self, second: int, start: float, now: float) -> float:
        overlap = min(second + 1.0, now) - max(float(second), start)
        if self.metric is Metric.RPS and second == math.floor(now) and second >= start:
            return 1.0  # the current second: all its requests arrived within the window
        return max(overlap, 0.0)


@dataclass(frozen=True)
class ScalerSpec:
    """An InferenceService's scaling settings (defaults: Knative's ``config-autoscaler``).

    ``target``: the metric's value each replica should average (requests in flight, or
    requests per second); set it below what a replica can serve to leave headroom (Knative
    aims at 70% of a replica's concurrency limit)."""

    metric: Metric
    target: float
    min_replicas: int = 1
    max_replicas: int = 10
    stable_window_s: float = 60.0
    panic_window_fraction: float = 0.1  # of the stable window: 6 s
    panic_threshold: float = 2.0  # panic at 200% of what the ready replicas serve at target
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0
    scale_to_zero_grace_s: float = 30.0
    activation_scale: int = 1

    def __post_init__(self) -> None:
        problems = [
            text
            for bad, text in (
                (self.target <= 0, "target must be > 0"),
                (self.min_replicas < 0, "min_replicas must be >= 0"),
                (self.max_replicas < max(self.min_replicas, 1), "max_replicas must be >= min, 1"),
                (self.stable_window_s < 6, "stable_window_s must be >= 6"),
                (not 0 < self.panic_window_fraction <= 1, "panic_window_fraction in (0, 1]"),
                (self.panic_window_s < 1, "the panic window must be >= 1 s"),
                (self.panic_threshold <= 1, "panic_threshold must be > 1"),
                (self.max_scale_up_rate <= 1, "max_scale_up_rate must be > 1"),
                (self.max_scale_down_rate <= 1, "max_scale_down_rate must be > 1"),
                (self.scale_to_zero_grace_s < 0, "scale_to_zero_grace_s must be >= 0"),
                (self.activation_scale < 1, "activation_scale must be >= 1"),
            )
            if bad
        ]
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def panic_window_s(self) -> float:
        return self.stable_window_s * self.panic_window_fraction

    def window(self) -> MetricWindow:
        """An empty window long enough for this spec."""
        return MetricWindow(self.metric, self.stable_window_s)


@dataclass(frozen=True)
class ScalerState:
    """What :func:`decide` remembers between ticks (a fresh one for a new service)."""

    panic_since: float | None = None  # when panic mode began; None: not panicking
    panic_last: float | None = None  # when the panic condition last held
    max_panic: int = 0  # the most replicas panic mode asked for (from the ready ones)
    last_traffic: float | None = None  # the latest traffic seen (or the first decision)

    @property
    def panicking(self) -> bool:
        return self.panic_since is not None


@dataclass(frozen=True)
class Decision:
    """How many replicas to run, why, and what was observed (for status and metrics)."""

    desired: int
    reason: Reason
    stable: float  # the stable-window average
    panic: float  # the panic-window average
    panicking: bool


def decide(
    spec: ScalerSpec, state: ScalerState, window: MetricWindow, ready_replicas: int, now: float
) -> tuple[ScalerState, Decision]:
    """The replicas an InferenceService should run at ``now`` (module docstring's rules)."""
    ready = max(ready_replicas, 0)
    base = max(ready, 1)
    stable = window.average(now, spec.stable_window_s)
    panic = window.average(now, spec.panic_window_s)
    seen = window.last_active
    recent = seen is not None and now - seen <= spec.panic_window_s
    want_stable = _want(spec, stable, recent)
    want_panic = _want(spec, panic, recent)
    # 1. Rate limits relative to what is ready.
    up = math.ceil(spec.max_scale_up_rate * base)
    down = math.floor(ready / spec.max_scale_down_rate)
    stable_n = min(max(want_stable, down), up)
    panic_n = min(max(want_panic, down), up)
    # 2. Panic mode: entered, extended, or left a stable window after it last held.
    state = _panic(spec, state, want_panic / base >= spec.panic_threshold, ready, now)
    last = now if state.last_traffic is None else state.last_traffic
    if seen is not None and seen > last:
        last = seen
    state = replace(state, last_traffic=last)
    if state.panicking:
        state = replace(state, max_panic=max(state.max_panic, panic_n, stable_n))
        desired, reason = state.max_panic, Reason.PANIC
    else:
        desired, reason = stable_n, _limited(want_stable, stable_n)
    # 3. Zero: only with minReplicas 0, after the stable window and the grace period.
    if desired == 0 and spec.min_replicas == 0:
        if now - last < spec.stable_window_s + spec.scale_to_zero_grace_s:
            desired, reason = 1, Reason.IDLE
        else:
            reason = Reason.SCALED_TO_ZERO
    elif ready == 0 and desired > 0:
        reason = Reason.ACTIVATING
    # 4. The user's bounds.
    if desired < spec.min_replicas:
        desired, reason = spec.min_replicas, Reason.AT_MIN_REPLICAS
    elif desired > spec.max_replicas:
        desired, reason = spec.max_replicas, Reason.AT_MAX_REPLICAS
    return state, Decision(desired, reason, stable, panic, state.panicking)


def _want(spec: ScalerSpec, observed: float, recent: bool) -> int:
    """Replicas for ``observed`` at target; at least ``activation_scale`` with any traffic
    (a request seen in the panic window counts even if the averages round it away)."""
    want = math.ceil(observed / spec.target - _EPS) if observed > 0 else 0
    return max(want, spec.activation_scale) if want > 0 or recent else 0


def _panic(spec: ScalerSpec, state: ScalerState, over: bool, ready: int, now: float) -> ScalerState:
    if over:
        if state.panic_since is None:  # from the replicas ready now: never below them
            return replace(state, panic_since=now, panic_last=now, max_panic=ready)
        return replace(state, panic_last=now)
    if state.panic_last is not None and now - state.panic_last >= spec.stable_window_s:
        return replace(state, panic_since=None, panic_last=None, max_panic=0)
    return state


def _limited(want: int, got: int) -> Reason:
    if got < want:
        return Reason.SCALE_UP_LIMITED
    if got > want:
        return Reason.SCALE_DOWN_LIMITED
    return Reason.STABLE
