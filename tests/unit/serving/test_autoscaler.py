"""The autoscaler's decisions (Knative KPA semantics), stepped second by second with time
as plain numbers: a gateway feeds the window, :func:`decide` runs every 2 s, and the
replicas it asks for become ready 2 s later."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from cnai.serving.autoscaler import (
    Decision,
    Metric,
    MetricWindow,
    Reason,
    ScalerSpec,
    ScalerState,
    decide,
)

TICK_S = 2  # Knative's tick
STARTUP_S = 2  # a new replica serves this long after it was asked for

Load = Callable[[int], float]  # second -> requests that second (rps) or total concurrency


def rps(
    target: float = 250, min_replicas: int = 1, max_replicas: int = 100, **kw: float
) -> ScalerSpec:
    return ScalerSpec(Metric.RPS, target, min_replicas, max_replicas, **kw)  # type: ignore[arg-type]


def steady(value: float) -> Load:
    return lambda s: value


def step(before: float, after: float, at: int) -> Load:
    return lambda s: before if s < at else after


def burst(base: float, peak: float, at: int, length: int) -> Load:
    return lambda s: peak if at <= s < at + length else base


@dataclass(frozen=True)
class Tick:
    now: int
    desired: int
    ready: int  # when decide ran
    reason: Reason
    panicking: bool


@dataclass
class World:
    """One service: its window, its scaler state, its ready and starting replicas."""

    spec: ScalerSpec
    ready: int = 0
    state: ScalerState = field(default_factory=ScalerState)
    starting: list[int] = field(default_factory=list)  # when each starting replica is ready
    ticks: list[Tick] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.window = self.spec.window()

    def run(self, load: Load, start: int, end: int) -> World:
        for second in range(start, end):
            self._observe(second, load(second))
            now = second + 1
            self.ready += sum(1 for t in self.starting if t <= now)
            self.starting = [t for t in self.starting if t > now]
            if now % TICK_S == 0:
                self.state, d = decide(self.spec, self.state, self.window, self.ready, now)
                self.ticks.append(Tick(now, d.desired, self.ready, d.reason, d.panicking))
                self._scale(d.desired, now)
        return self

    def _observe(self, second: int, value: float) -> None:
        if self.spec.metric is Metric.RPS:
            if value:
                self.window.add_requests(second, round(value))
        else:
            self.window.record(second, value)

    def _scale(self, desired: int, now: int) -> None:
        """As a Deployment does: start the missing replicas; remove starting ones first."""
        missing = desired - self.ready - len(self.starting)
        self.starting += [now + STARTUP_S] * max(missing, 0)
        surplus = max(-missing, 0)
        cancelled = min(surplus, len(self.starting))
        self.starting = self.starting[: len(self.starting) - cancelled]
        self.ready -= surplus - cancelled

    def desired(self) -> list[int]:
        return [t.desired for t in self.ticks]

    def at(self, now: int) -> Tick:
        return next(t for t in self.ticks if t.now == now)

    def between(self, start: int, end: int) -> list[Tick]:
        return [t for t in self.ticks if start <= t.now < end]


def direction_changes(values: list[int]) -> int:
    """How often the replica count turned from going up to going down or back."""
    moves = [b - a for a, b in itertools.pairwise(values) if b != a]
    return sum(1 for a, b in itertools.pairwise(moves) if (a > 0) != (b > 0))


# --------------------------------------------------------------------------- the window


def test_rps_window_averages_requests_per_second_over_whole_seconds() -> None:
    w = MetricWindow(Metric.RPS, 60)
    for s in range(100):
        w.add_requests(s, 10 if s < 94 else 70)
    assert w.average(100, 6) == pytest.approx(70)
    assert w.average(100, 60) == pytest.approx((54 * 10 + 6 * 70) / 60)


def test_rps_window_weights_a_partial_oldest_second_and_counts_the_current_one() -> None:
    w = MetricWindow(Metric.RPS, 60)
    for s in range(10):
        w.add_requests(s, 10)
    w.add_requests(10.2, 4)
    # [4.5, 10.5]: half of second 4, seconds 5-9 whole, the 4 requests of second 10.
    assert w.average(10.5, 6) == pytest.approx((5 + 50 + 4) / 6)


def test_concurrency_window_averages_samples_within_a_second_then_over_time() -> None:
    w = MetricWindow(Metric.CONCURRENCY, 60)
    for s in range(60):
        w.record(s + 0.1, 2.0)
        w.record(s + 0.6, 6.0)  # the second's bucket: mean 4
    assert w.average(60, 60) == pytest.approx(4.0)
    assert w.average(60, 6) == pytest.approx(4.0)


def test_a_young_window_averages_over_its_history_not_the_full_window() -> None:
    w = MetricWindow(Metric.RPS, 60)
    for s in range(100, 110):
        w.add_requests(s, 30)
    assert w.average(110, 60) == pytest.approx(30)


def test_window_memory_is_bounded_and_old_seconds_are_forgotten() -> None:
    w = MetricWindow(Metric.RPS, 60)
    for s in range(10_000):
        w.add_requests(s, 5)
    w.add_requests(3, 1_000_000)  # older than what is kept: dropped
    assert len(w._sum) == w.size == 62
    assert w.average(10_000, 60) == pytest.approx(5)
    assert w.average(10_200, 60) == 0.0  # all of it more than a window ago


@pytest.mark.parametrize(
    ("metric", "call"),
    [
        pytest.param(Metric.RPS, lambda w: w.record(1, 1.0), id="rps-window-refuses-samples"),
        pytest.param(
            Metric.CONCURRENCY, lambda w: w.add_requests(1, 1), id="concurrency-refuses-counts"
        ),
    ],
)
def test_window_refuses_the_other_metric(
    metric: Metric, call: Callable[[MetricWindow], None]
) -> None:
    with pytest.raises(ValueError, match="this window"):
        call(MetricWindow(metric))


def test_spec_defaults_are_knatives_and_bad_values_are_refused() -> None:
    spec = rps()
    assert (spec.stable_window_s, spec.panic_window_s, spec.panic_threshold) == (60, 6, 2.0)
    assert (spec.max_scale_up_rate, spec.max_scale_down_rate) == (1000, 2)
    assert (spec.scale_to_zero_grace_s, spec.activation_scale) == (30, 1)
    with pytest.raises(ValueError, match="target must be > 0; max_replicas"):
        ScalerSpec(Metric.RPS, 0, min_replicas=3, max_replicas=2)


# --------------------------------------------------------------------------- decisions


@pytest.mark.parametrize(
    ("spec", "load", "replicas"),
    [
        pytest.param(rps(250), steady(1000), 4, id="rps-1000-at-250-per-replica-holds-4"),
        pytest.param(
            ScalerSpec(Metric.CONCURRENCY, 10, 1, 100), steady(40), 4, id="concurrency-40-at-10"
        ),
        pytest.param(rps(300), steady(1000), 4, id="rps-1000-at-300-rounds-up-to-4"),
    ],
)
def test_steady_load_at_target_is_stable(spec: ScalerSpec, load: Load, replicas: int) -> None:
    world = World(spec, ready=replicas).run(load, 0, 300)
    assert set(world.desired()) == {replicas}
    assert {t.reason for t in world.ticks} == {Reason.STABLE}
    assert not any(t.panicking for t in world.ticks)


@pytest.mark.parametrize(
    ("spec", "load"),
    [
        pytest.param(rps(250), step(1000, 4000, 120), id="rps-step-4x"),
        pytest.param(
            ScalerSpec(Metric.CONCURRENCY, 10, 1, 100), step(40, 160, 120), id="concurrency-4x"
        ),
    ],
)
def test_a_4x_step_up_panics_and_scales_up_within_seconds(spec: ScalerSpec, load: Load) -> None:
    world = World(spec, ready=4).run(load, 0, 200)
    assert set(world.desired()[:59]) == {4}  # before the step (ticks at 2..118)
    first_panic = next(t for t in world.ticks if t.panicking)
    assert first_panic.now <= 124
    assert first_panic.reason is Reason.PANIC
    assert world.at(128).desired == 16  # 8 s after the step; stable alone would ask for 6
    assert max(world.desired()) == 16


def test_without_panic_the_same_step_would_take_most_of_a_minute() -> None:
    calm = rps(250, panic_threshold=1000)
    world = World(calm, ready=4).run(step(1000, 4000, 120), 0, 200)
    assert not any(t.panicking for t in world.ticks)
    assert world.at(128).desired < 8
    reached = next(t.now for t in world.ticks if t.desired == 16)
    assert reached >= 170


def test_a_step_down_scales_down_gradually_by_at_most_half_per_tick() -> None:
    world = World(rps(250), ready=16).run(step(4000, 1000, 100), 0, 300)
    after = world.between(100, 300)
    for a, b in itertools.pairwise(after):
        assert b.desired >= a.desired // 2
        assert b.desired <= a.desired  # never up again
    assert after[0].desired == 16  # the stable average moves slowly
    assert world.at(140).desired > 4
    assert world.at(162).desired == 4  # the step left the stable window
    assert not any(t.panicking for t in world.ticks)


def test_scale_down_rate_limit_halves_at_most() -> None:
    spec = rps(250)
    window = spec.window()
    for s in range(200):
        window.add_requests(s, 1 if s < 100 else 0)  # a trickle, then nothing
    _, d = decide(spec, ScalerState(), window, 8, 200)
    assert (d.desired, d.reason) == (4, Reason.SCALE_DOWN_LIMITED)


def test_scale_up_rate_limit_multiplies_the_ready_replicas_at_most() -> None:
    world = World(rps(250, max_scale_up_rate=2), ready=1).run(step(250, 4000, 10), 0, 40)
    ups = [t for t in world.ticks if t.desired > t.ready]
    assert ups
    assert all(t.desired <= 2 * max(t.ready, 1) for t in ups)
    assert world.ticks[-1].desired == 16


def test_no_scale_down_in_panic_then_down_once_panic_ends() -> None:
    # 4x for 20 s, then back: panic starts, holds its maximum, ends a stable window later.
    world = World(rps(250), ready=4).run(burst(1000, 4000, 120, 20), 0, 400)
    in_panic = [t for t in world.ticks if t.panicking]
    assert in_panic
    peak_at = next(t.now for t in in_panic if t.desired == 16)
    assert all(t.desired == 16 for t in in_panic if t.now >= peak_at)
    last_panic = in_panic[-1].now
    assert last_panic >= 120 + 60  # the load fell at 140 but panic holds on
    assert world.at(last_panic + TICK_S).desired < 16
    assert world.ticks[-1].desired == 4


@pytest.mark.parametrize("length", [10, 30], ids=["10s-burst", "30s-burst"])
@pytest.mark.parametrize(
    ("spec", "base", "peak"),
    [
        pytest.param(rps(250), 1000, 4000, id="rps"),
        pytest.param(ScalerSpec(Metric.CONCURRENCY, 10, 1, 100), 40, 160, id="concurrency"),
    ],
)
def test_short_bursts_are_caught_by_panic_and_do_not_flap(
    spec: ScalerSpec, base: float, peak: float, length: int
) -> None:
    world = World(spec, ready=4).run(burst(base, peak, 200, length), 0, 500)
    during = world.between(200, 200 + length + TICK_S)
    assert any(t.panicking for t in during)
    assert max(t.desired for t in during) == 16
    assert world.ticks[-1].desired == 4  # back down afterwards
    assert direction_changes(world.desired()) == 1  # up once, down once: no flapping


# --------------------------------------------------------------------------- to and from zero


@pytest.mark.parametrize(
    ("min_replicas", "zero_at"),
    [
        pytest.param(0, 190, id="min-0-zero-after-60s-window-and-30s-grace"),
        pytest.param(1, None, id="min-1-never-zero"),
    ],
)
def test_idle_scales_to_zero_only_after_window_and_grace_and_only_with_min_0(
    min_replicas: int, zero_at: int | None
) -> None:
    # Traffic until second 99 (its requests recorded at 99): idle from then on.
    world = World(rps(250, min_replicas=min_replicas), ready=2).run(step(400, 0, 100), 0, 400)
    zeros = [t.now for t in world.ticks if t.desired == 0]
    assert (zeros[0] if zeros else None) == zero_at
    if zero_at is not None:
        assert all(t.desired >= 1 for t in world.ticks if t.now < zero_at)
        assert world.at(zero_at - TICK_S).reason is Reason.IDLE
        assert world.at(zero_at).reason is Reason.SCALED_TO_ZERO
        assert zeros == list(range(zero_at, 401, TICK_S))  # stays there
    else:
        assert world.ticks[-1].reason is Reason.AT_MIN_REPLICAS


def _idle_since_long_ago(spec: ScalerSpec) -> tuple[ScalerState, MetricWindow]:
    window = spec.window()
    state, d = decide(spec, ScalerState(last_traffic=0.0), window, 0, 1000.0)
    assert d.desired == 0
    return state, window


@pytest.mark.parametrize(
    ("spec", "feed", "want"),
    [
        pytest.param(
            rps(250, min_replicas=0),
            lambda w: w.add_requests(1000.0, 1),
            1,
            id="one-request-counted-at-the-gateway",
        ),
        pytest.param(
            ScalerSpec(Metric.CONCURRENCY, 10, 0, 100),
            lambda w: w.record(1000.0, 1.0),
            1,
            id="one-request-held-by-the-gateway-this-instant",
        ),
        pytest.param(
            rps(250, min_replicas=0, activation_scale=3),
            lambda w: w.add_requests(1000.0, 1),
            3,
            id="activation-scale-3",
        ),
    ],
)
def test_from_zero_one_request_activates_at_once(
    spec: ScalerSpec, feed: Callable[[MetricWindow], None], want: int
) -> None:
    state, window = _idle_since_long_ago(spec)
    feed(window)
    state, d = decide(spec, state, window, 0, 1000.0)
    assert (d.desired, d.reason) == (want, Reason.ACTIVATING)
    assert state.last_traffic == 1000.0


def test_from_zero_a_large_burst_panics_straight_to_its_size() -> None:
    spec = rps(250, min_replicas=0)
    state, window = _idle_since_long_ago(spec)
    window.add_requests(1000.2, 3000)  # 3000 requests held within the first second
    _, d = decide(spec, state, window, 0, 1001.0)
    assert d.panicking
    assert d.reason is Reason.ACTIVATING
    assert d.desired == 12  # 3000 rps over the one second of history seen


def test_a_fresh_scaler_counts_its_first_decision_as_traffic() -> None:
    # A new service (or a restarted controller) with min 0 and no traffic: 1 replica,
    # then zero a stable window plus the grace period after its first decision (at 2).
    spec = rps(250, min_replicas=0)
    world = World(spec).run(steady(0), 0, 120)
    assert world.at(2).desired == 1
    assert world.at(2).reason is Reason.IDLE
    assert next(t.now for t in world.ticks if t.desired == 0) == 92


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("spec", "load", "want", "reason"),
    [
        pytest.param(rps(250, max_replicas=5), steady(4000), 5, Reason.AT_MAX_REPLICAS, id="max"),
        pytest.param(rps(250, min_replicas=3), steady(100), 3, Reason.AT_MIN_REPLICAS, id="min"),
        pytest.param(rps(250, min_replicas=3), steady(0), 3, Reason.AT_MIN_REPLICAS, id="min-idle"),
    ],
)
def test_bounds_clamp_the_decision(spec: ScalerSpec, load: Load, want: int, reason: Reason) -> None:
    world = World(spec, ready=want).run(load, 0, 300)
    assert set(world.desired()) == {want}
    assert world.ticks[-1].reason is reason


def test_decision_reports_what_it_observed() -> None:
    spec = rps(250)
    window = spec.window()
    for s in range(60):
        window.add_requests(s, 500)
    state, d = decide(spec, ScalerState(), window, 2, 60)
    assert d == Decision(2, Reason.STABLE, 500.0, 500.0, False)
    assert state == ScalerState(last_traffic=60)  # a first decision counts as traffic
