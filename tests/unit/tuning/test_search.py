"""The Optuna bridge, driven as the Experiment controller drives it: every suggestion and
every pruning decision comes from a study rebuilt from hand-made Trial objects, with no
Optuna state kept between calls (each call is a "restart")."""

from __future__ import annotations

import copy
import itertools
import statistics
import subprocess
import sys
from typing import Any, Self

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from cnai.core.meta import ObjectMeta
from cnai.tuning import search
from cnai.tuning.api import ExperimentSpec, Parameter, Trial, TrialPhase, TrialSpec, TrialStatus

# -- builders --------------------------------------------------------------------------


class SpecBuilder:
    """An ExperimentSpec as a client writes it:
    ``make_spec("tpe").floats("x", "y").categorical("c", "a", "b").settings(n=3)``."""

    def __init__(self, algorithm: str) -> None:
        self._body: dict[str, Any] = {
            "parameters": [],
            "objective": {"metric": "loss", "goal": "minimize"},
            "algorithm": {"name": algorithm, "seed": 1},
            "trialTemplate": {"trainer": {"command": ["python", "train.py"]}},
        }

    def param(self, name: str, type: str, **fields: Any) -> Self:
        self._body["parameters"].append({"name": name, "type": type, **fields})
        return self

    def floats(self, *names: str, low: float = -5, high: float = 5) -> Self:
        for name in names:
            self.param(name, "float", min=low, max=high)
        return self

    def categorical(self, name: str, *values: Any) -> Self:
        return self.param(name, "categorical", values=list(values))

    def maximize(self) -> Self:
        self._body["objective"]["goal"] = "maximize"
        return self

    def target(self, value: float) -> Self:
        self._body["objective"]["target"] = value
        return self

    def also(self, metric: str, goal: str) -> Self:
        """One more objective (multi-objective search)."""
        self._body["objective"].setdefault("additional", []).append(
            {"metric": metric, "goal": goal}
        )
        return self

    def seed(self, value: int | None) -> Self:
        self._body["algorithm"]["seed"] = value
        return self

    def settings(self, **values: Any) -> Self:
        self._body["algorithm"]["settings"] = values
        return self

    def pruner(self, name: str, **settings: Any) -> Self:
        self._body["earlyStopping"] = {"name": name, "settings": settings}
        return self

    def build(self) -> ExperimentSpec:
        return ExperimentSpec.model_validate(copy.deepcopy(self._body))


def make_spec(algorithm: str = "tpe") -> SpecBuilder:
    return SpecBuilder(algorithm)


class TrialBuilder:
    """A Trial as the controller stores it: ``make_trial(3, x=1.0).succeeded(0.5)``."""

    def __init__(self, number: int, params: dict[str, Any]) -> None:
        self._trial = Trial(
            metadata=ObjectMeta(name=f"exp-{number}", namespace="default"),
            spec=TrialSpec(experiment="exp", number=number, params=params),
            status=TrialStatus(),
        )

    def succeeded(self, *values: float) -> Self:
        self._trial.status.phase = TrialPhase.SUCCEEDED
        self._trial.status.values = list(values)
        return self

    def phase(self, phase: str) -> Self:
        self._trial.status.phase = TrialPhase(phase)
        return self

    def reported(self, curve: dict[int, float]) -> Self:
        self._trial.status.intermediate = {str(step): v for step, v in curve.items()}
        return self

    def build(self) -> Trial:
        # Through the wire form, as a restarted controller reads it from the store.
        return Trial.model_validate(self._trial.model_dump(mode="json"))


def make_trial(number: int, **params: Any) -> TrialBuilder:
    return TrialBuilder(number, params)


def bowl(params: dict[str, Any]) -> float:
    """The objective: its minimum 0 is at x=2, y=-1, c="a"."""
    penalty = 0.0 if params.get("c", "a") == "a" else 1.0
    return float((params["x"] - 2) ** 2 + (params["y"] + 1) ** 2 + penalty)


def drive(spec: ExperimentSpec, n: int) -> list[Trial]:
    """Run ``n`` trials one after another, each suggested by a freshly rebuilt study."""
    trials: list[Trial] = []
    for number in range(n):
        params = search.suggest(spec, trials)
        trials.append(make_trial(number, **params).succeeded(bowl(params)).build())
    return trials


def curve(level: float, steps: int = 9) -> dict[int, float]:
    """A learning curve falling towards ``level`` over steps 1..steps."""
    return {step: level + 3.0 / step for step in range(1, steps + 1)}


# -- the search space ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"type": "float", "min": 0, "max": 1}, FloatDistribution(0, 1), id="float"),
        pytest.param(
            {"type": "float", "min": 1e-4, "max": 1, "log": True},
            FloatDistribution(1e-4, 1, log=True),
            id="float-log",
        ),
        pytest.param(
            {"type": "float", "min": 0.1, "max": 1.0, "step": 0.2},
            FloatDistribution(0.1, 0.9, step=0.2),
            id="float-step-off-the-range-ends-on-the-last-step-without-warning",
        ),
        pytest.param(
            {"type": "int", "min": 1, "max": 10, "step": 4},
            IntDistribution(1, 9, step=4),
            id="int-step-off-the-range-ends-on-the-last-step-without-warning",
        ),
        pytest.param(
            {"type": "int", "min": 1, "max": 64, "log": True},
            IntDistribution(1, 64, log=True),
            id="int-log",
        ),
        pytest.param(
            {"type": "categorical", "values": ["relu", 3, 0.5, True]},
            CategoricalDistribution(["relu", 3, 0.5, True]),
            id="categorical",
        ),
    ],
)
def test_each_parameter_becomes_its_optuna_distribution(
    fields: dict[str, Any], expected: optuna.distributions.BaseDistribution
) -> None:
    dists = search.distributions([Parameter.model_validate({"name": "p", **fields})])
    assert dists == {"p": expected}


def test_directions_follow_each_metrics_goal() -> None:
    spec = make_spec().floats("x").maximize().also("latency", "minimize").build()
    assert search.directions(spec.objective) == ["maximize", "minimize"]


def test_the_grid_lists_every_value_of_every_parameter() -> None:
    spec = (
        make_spec("grid")
        .param("n", "int", min=2, max=8, step=3)
        .param("lr", "float", min=0.1, max=0.35, step=0.1)
        .categorical("act", "relu", "tanh")
        .build()
    )
    assert search.grid(spec.parameters) == {
        "n": [2, 5, 8],
        "lr": [0.1, 0.2, 0.3],
        "act": ["relu", "tanh"],
    }
    assert search.grid_size(spec.parameters) == 18


# -- samplers and pruners --------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "cls"),
    [
        pytest.param("random", optuna.samplers.RandomSampler, id="random"),
        pytest.param("grid", optuna.samplers.GridSampler, id="grid"),
        pytest.param("tpe", optuna.samplers.TPESampler, id="tpe"),
        pytest.param("cmaes", optuna.samplers.CmaEsSampler, id="cmaes"),
        pytest.param("gp", optuna.samplers.GPSampler, id="gp"),
        pytest.param("nsga2", optuna.samplers.NSGAIISampler, id="nsga2"),
    ],
)
def test_each_algorithm_is_its_optuna_sampler(algorithm: str, cls: type[Any]) -> None:
    spec = make_spec(algorithm).param("x", "float", min=0, max=1, step=0.5).build()
    assert type(search.make_sampler(spec, salt=0)) is cls


def test_settings_reach_the_sampler_as_keyword_arguments() -> None:
    spec = make_spec("tpe").floats("x").settings(n_startup_trials=3, multivariate=True).build()
    sampler = search.make_sampler(spec, salt=0)
    assert isinstance(sampler, optuna.samplers.TPESampler)
    assert sampler._n_startup_trials == 3
    assert sampler._multivariate


def first_draw(spec: ExperimentSpec, salt: int) -> dict[str, Any]:
    study = optuna.create_study(sampler=search.make_sampler(spec, salt))
    return study.ask(search.distributions(spec.parameters)).params


def test_the_seed_is_salted_so_a_rebuilt_study_does_not_repeat_its_draw() -> None:
    spec = make_spec("random").floats("x", "y").seed(7).build()
    assert first_draw(spec, salt=3) == first_draw(spec, salt=3)
    assert first_draw(spec, salt=3) != first_draw(spec, salt=4)


def test_random_search_draws_as_a_study_with_the_whole_history_would() -> None:
    # suggest() skips the history for random search: it must not change the point.
    spec = make_spec("random").floats("x", "y").seed(7).build()
    trials = [make_trial(i, x=0.1 * i, y=0.0).succeeded(float(i)).build() for i in range(5)]
    full = search._build(spec, trials, search.make_sampler(spec, salt=len(trials)))
    asked = full.ask(search.distributions(spec.parameters)).params
    assert search.suggest(spec, trials) == asked


def test_the_grid_keeps_one_order_whatever_the_salt() -> None:
    spec = make_spec("grid").param("n", "int", min=0, max=9).seed(7).build()
    assert first_draw(spec, salt=0) == first_draw(spec, salt=5)


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        pytest.param(make_spec("tpe").settings(n_startup=3), "n_startup", id="unknown-setting"),
        pytest.param(make_spec("tpe").settings(seed=3), "seed", id="seed-is-spec-algorithm-seed"),
        pytest.param(
            make_spec("grid").settings(search_space={}), "search_space", id="grid-space-is-given"
        ),
        pytest.param(make_spec("tpe").settings(gamma=0.1), "gamma", id="takes-a-python-callable"),
        pytest.param(
            make_spec("nsga2").settings(crossover="uniform"), "crossover", id="takes-an-object"
        ),
        pytest.param(
            make_spec("tpe").settings(n_startup_trials="ten"), "n_startup_trials", id="wrong-type"
        ),
        pytest.param(
            make_spec("tpe").settings(multivariate=1), "multivariate", id="int-for-a-bool"
        ),
        pytest.param(
            make_spec("cmaes").settings(with_margin=True), "with_margin", id="cma-with-margin"
        ),
        pytest.param(
            make_spec("nsga2").settings(population_size=1), "population_size", id="out-of-range"
        ),
        pytest.param(
            make_spec("random").pruner("hyperband", max_resource="all"),
            "max_resource",
            id="pruner-bad-value",
        ),
        pytest.param(
            make_spec("random").pruner("median", warmup=2), "warmup", id="pruner-unknown-setting"
        ),
    ],
)
def test_a_bad_setting_raises_value_error_naming_it(spec: SpecBuilder, named: str) -> None:
    def make_both(spec: ExperimentSpec) -> None:
        search.make_sampler(spec, salt=0)
        search.make_pruner(spec)

    with pytest.raises(ValueError, match=named):
        make_both(spec.floats("x").build())


def test_a_deprecated_setting_is_a_problem_for_admission_but_still_works() -> None:
    spec = make_spec("tpe").floats("x").settings(consider_prior=True).build()
    problem = search.sampler_problem(spec)
    assert problem is not None
    assert "consider_prior" in problem
    with pytest.warns(FutureWarning):
        search.make_sampler(spec, salt=0)


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        pytest.param("median", optuna.pruners.MedianPruner, id="median"),
        pytest.param("successive-halving", optuna.pruners.SuccessiveHalvingPruner, id="sh"),
        pytest.param("hyperband", optuna.pruners.HyperbandPruner, id="hyperband"),
        pytest.param("wilcoxon", optuna.pruners.WilcoxonPruner, id="wilcoxon-no-warning"),
    ],
)
def test_each_early_stopping_is_its_optuna_pruner(name: str, cls: type[Any]) -> None:
    assert type(search.make_pruner(make_spec().floats("x").pruner(name).build())) is cls


def test_no_early_stopping_means_no_pruner() -> None:
    assert search.make_pruner(make_spec().floats("x").build()) is None


# -- searching end to end --------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "n", "good_enough"),
    [
        pytest.param(
            make_spec("random").floats("x", "y").categorical("c", "a", "b"), 30, 2.0, id="random"
        ),
        pytest.param(
            make_spec("tpe")
            .floats("x", "y")
            .categorical("c", "a", "b")
            .settings(n_startup_trials=8),
            30,
            0.5,
            id="tpe",
        ),
        pytest.param(make_spec("cmaes").floats("x", "y"), 30, 0.1, id="cmaes"),
        pytest.param(
            make_spec("gp")
            .floats("x", "y")
            .categorical("c", "a", "b")
            .settings(n_startup_trials=5),
            12,
            0.1,
            id="gp",
        ),
        pytest.param(
            make_spec("nsga2")
            .floats("x", "y")
            .categorical("c", "a", "b")
            .settings(population_size=8),
            32,
            5.0,  # a genetic algorithm needs more than 4 generations to get close
            id="nsga2",
        ),
    ],
)
def test_each_algorithm_finds_the_bottom_of_the_bowl(
    spec: SpecBuilder, n: int, good_enough: float
) -> None:
    built = spec.build()
    trials = drive(built, n)
    best, front = search.best(built, trials)
    assert best is not None
    assert front == []
    assert best.values[0] < good_enough
    for trial in trials:  # every point is in the space, in the parameters' own types
        assert -5 <= trial.spec.params["x"] <= 5
        assert type(trial.spec.params["x"]) is float


@pytest.mark.parametrize(
    ("spec", "n"),
    [
        pytest.param(make_spec("random"), 16, id="random"),
        pytest.param(make_spec("tpe").settings(n_startup_trials=6), 16, id="tpe"),
        pytest.param(make_spec("nsga2").settings(population_size=4), 16, id="nsga2"),
        pytest.param(make_spec("gp").settings(n_startup_trials=4), 6, id="gp"),
        pytest.param(make_spec("grid").param("y", "int", min=0, max=1), 16, id="grid"),
    ],
)
def test_multi_objective_search_gives_the_pareto_front(spec: SpecBuilder, n: int) -> None:
    # Two objectives pulling x towards 0 and towards 2: the front is the trials no other
    # trial beats on both.
    built = spec.param("x", "float", min=-4, max=4, step=0.5).also("other", "minimize").build()
    trials: list[Trial] = []
    for number in range(n):
        params = search.suggest(built, trials)
        x = params["x"]
        trials.append(make_trial(number, **params).succeeded(x**2, (x - 2) ** 2).build())
    best, front = search.best(built, trials)

    def beaten(a: list[float]) -> bool:
        return any(b != a and all(v <= w for v, w in zip(b, a, strict=True)) for b in scores)

    scores = [t.status.values for t in trials]
    expected = [t.metadata.name for t in trials if not beaten(t.status.values)]
    assert best is None
    assert [t.name for t in front] == expected
    assert front


def test_cmaes_keeps_learning_across_rebuilds() -> None:
    # CMA-ES keeps its state in the trials it asked for; rebuilt from plain values it
    # would restart at every ask and scatter around the centre of the space forever.
    spec = make_spec("cmaes").floats("x", "y").build()
    trials = drive(spec, 30)
    late = [bowl(t.spec.params) for t in trials[-8:]]
    early = [bowl(t.spec.params) for t in trials[:8]]
    assert statistics.median(late) < 2.0
    assert statistics.median(early) > 5.0
    generations = [
        t.system_attrs.get("cma:generation") for t in search.build_study(spec, trials).trials
    ]
    assert max(g for g in generations if g is not None) >= 3


def test_nsga2_rebuilds_its_generations_from_the_trials() -> None:
    spec = make_spec("nsga2").floats("x", "y").settings(population_size=4).build()
    trials = drive(spec, 12)
    study = search.build_study(spec, trials)
    generations = [t.system_attrs.get("NSGAIISampler:generation") for t in study.trials]
    assert generations == [0] * 4 + [1] * 4 + [2] * 4


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(make_spec("random").floats("x", "y"), id="random"),
        pytest.param(make_spec("tpe").floats("x", "y").settings(n_startup_trials=4), id="tpe"),
        pytest.param(make_spec("cmaes").floats("x", "y"), id="cmaes"),
        pytest.param(make_spec("gp").floats("x", "y").settings(n_startup_trials=4), id="gp"),
        pytest.param(make_spec("nsga2").floats("x", "y").settings(population_size=4), id="nsga2"),
        pytest.param(
            make_spec("grid").param("x", "int", min=0, max=4).param("y", "int", min=0, max=4),
            id="grid",
        ),
    ],
)
def test_a_restart_gives_the_same_next_point_for_the_same_stored_trials(
    spec: SpecBuilder,
) -> None:
    built = spec.build()
    trials = drive(built, 8)
    trials.append(make_trial(8, **search.suggest(built, trials)).build())  # one running
    again = [Trial.model_validate(t.to_dict()) for t in reversed(trials)]  # as listed
    assert search.suggest(built, again) == search.suggest(built, trials)


def test_params_are_stored_in_the_distributions_types_and_misfits_fail() -> None:
    spec = make_spec("random").param("n", "int", min=1, max=8).floats("x").build()
    trials = [
        make_trial(0, n=3.0, x=1).succeeded(1.0).build(),  # JSON may carry 3.0 and 1
        make_trial(1, n=9, x=0.0).succeeded(1.0).build(),  # out of range
        make_trial(2, n=2).succeeded(1.0).build(),  # a parameter missing
        make_trial(3, n=2, x=0.0).succeeded().build(),  # no value
    ]
    study = search.build_study(spec, trials)
    first = study.trials[0]
    assert first.state is TrialState.COMPLETE
    assert first.params == {"n": 3, "x": 1.0}
    assert type(first.params["n"]) is int
    assert type(first.params["x"]) is float
    assert [t.state for t in study.trials[1:]] == [TrialState.FAIL] * 3


def test_phases_become_optuna_states_with_their_values_in_number_order() -> None:
    spec = make_spec("random").floats("x").build()
    trials = [
        make_trial(3, x=0.0).reported({1: 5.0}).build(),
        make_trial(1, x=0.0).phase("Failed").build(),
        make_trial(0, x=0.0).succeeded(2.0).reported({1: 3.0, 2: 2.0}).build(),
        make_trial(2, x=0.0).phase("Pruned").reported({1: 9.0}).build(),
    ]
    study = search.build_study(spec, trials)
    assert [t.state for t in study.trials] == [
        TrialState.COMPLETE,
        TrialState.FAIL,
        TrialState.PRUNED,
        TrialState.RUNNING,
    ]
    assert study.trials[0].values == [2.0]
    assert study.trials[0].intermediate_values == {1: 3.0, 2: 2.0}
    assert study.trials[2].intermediate_values == {1: 9.0}
    assert study.trials[3].intermediate_values == {1: 5.0}


# -- the grid --------------------------------------------------------------------------

GRID = (
    make_spec("grid")
    .param("n", "int", min=0, max=2)
    .param("lr", "float", min=0, max=1.1, step=0.5)
    .categorical("act", "relu", "tanh")
)
ALL_POINTS = {
    (n, lr, act) for n, lr, act in itertools.product((0, 1, 2), (0.0, 0.5, 1.0), ("relu", "tanh"))
}


def point(params: dict[str, Any]) -> tuple[Any, ...]:
    return (params["n"], params["lr"], params["act"])


def test_grid_search_covers_the_grid_once_then_is_exhausted() -> None:
    spec = GRID.build()
    trials: list[Trial] = []
    phases = itertools.cycle(["Succeeded", "Failed", "Pruned", "Running"])
    for number in range(len(ALL_POINTS)):
        assert not search.exhausted(spec, trials)
        params = search.suggest(spec, trials)
        trial = make_trial(number, **params).phase(next(phases))
        trials.append((trial.succeeded(1.0) if number % 4 == 0 else trial).build())
    assert sorted(point(t.spec.params) for t in trials) == sorted(ALL_POINTS)
    assert search.exhausted(spec, trials)
    with pytest.raises(search.SearchExhausted):
        search.suggest(spec, trials)


def test_grid_search_skips_points_taken_out_of_its_order() -> None:
    # The grid sampler hands study trial n the n-th point of its order and tells used
    # points by its own attributes: trials that took their points in another order (made
    # by hand, or by another order) must still not be repeated.
    spec = GRID.build()
    taken = sorted(ALL_POINTS)[:7]
    trials = [
        make_trial(i, n=n, lr=lr, act=act).succeeded(1.0).build()
        for i, (n, lr, act) in enumerate(taken)
    ]
    while not search.exhausted(spec, trials):
        params = search.suggest(spec, trials)
        assert point(params) not in {point(t.spec.params) for t in trials}
        trials.append(make_trial(len(trials), **params).succeeded(1.0).build())
    assert len(trials) == len(ALL_POINTS)


def test_grid_search_needs_a_step_for_floats() -> None:
    with pytest.raises(ValueError, match="step"):
        search.make_sampler(make_spec("grid").floats("x").build(), salt=0)


def test_only_a_grid_is_ever_exhausted() -> None:
    spec = make_spec("random").categorical("c", "a").build()
    trials = [make_trial(0, c="a").succeeded(1.0).build()]
    assert not search.exhausted(spec, trials)
    assert search.suggest(spec, trials) == {"c": "a"}


# -- pruning ---------------------------------------------------------------------------

PRUNERS = [
    pytest.param("median", {}, id="median"),
    pytest.param("successive-halving", {"min_resource": 1, "reduction_factor": 2}, id="sh"),
    pytest.param("successive-halving", {}, id="sh-auto-min-resource"),
    pytest.param(
        "hyperband", {"min_resource": 1, "max_resource": 9, "reduction_factor": 3}, id="hyperband"
    ),
    pytest.param("hyperband", {}, id="hyperband-auto-max-resource"),
    pytest.param("wilcoxon", {}, id="wilcoxon"),
]


def finished_with_curves(n: int = 12) -> list[Trial]:
    return [
        make_trial(i, x=0.0, y=0.0).succeeded(0.1 * i).reported(curve(0.1 * i)).build()
        for i in range(n)
    ]


@pytest.mark.parametrize(("name", "settings"), PRUNERS)
def test_each_pruner_stops_a_hopeless_trial_and_keeps_a_promising_one(
    name: str, settings: dict[str, Any]
) -> None:
    spec = make_spec("random").floats("x", "y").pruner(name, **settings).build()
    done = finished_with_curves()
    hopeless = make_trial(12, x=1.0, y=1.0).reported(curve(10.0)).build()
    promising = make_trial(13, x=1.0, y=1.0).reported(curve(0.0)).build()
    trials = [*done, hopeless, promising]
    assert search.should_prune(spec, trials, hopeless)
    assert not search.should_prune(spec, trials, promising)


@pytest.mark.parametrize(("name", "settings"), [p for p in PRUNERS if "auto" not in str(p.id)])
def test_rebuilt_pruning_decides_as_a_live_optuna_study_at_every_step(
    name: str, settings: dict[str, Any]
) -> None:
    # A live study (trials reporting each step in-process, the pruner keeping its state in
    # the trials) against rebuilds from Trial objects: the same decision at every step.
    # Not with "auto" resources: live, the trials that ran before the first completed one
    # never enter a rung; rebuilt, every trial has the rungs its values reached.
    spec = make_spec("random").floats("x", "y").pruner(name, **settings).build()
    live = optuna.create_study(
        study_name=search.STUDY_NAME,
        sampler=optuna.samplers.RandomSampler(seed=3),
        pruner=search.make_pruner(spec),
    )
    decisions: dict[tuple[int, int], bool] = {}

    def objective(trial: optuna.Trial) -> float:
        x, y = trial.suggest_float("x", -5, 5), trial.suggest_float("y", -5, 5)
        for step, value in curve(abs(x) + abs(y)).items():
            trial.report(value, step)
            decisions[trial.number, step] = bool(trial.should_prune())
            if decisions[trial.number, step]:
                raise optuna.TrialPruned()
        return abs(x) + abs(y)

    live.optimize(objective, n_trials=15)
    phase = {TrialState.COMPLETE: "Succeeded", TrialState.PRUNED: "Pruned"}
    stored = [
        make_trial(t.number, **t.params)
        .succeeded(*(t.values or []))
        .phase(phase[t.state])
        .reported(t.intermediate_values)
        .build()
        for t in live.trials
    ]
    assert any(decisions.values())
    for (number, step), pruned in decisions.items():
        so_far = {s: v for s, v in live.trials[number].intermediate_values.items() if s <= step}
        running = make_trial(number, **stored[number].spec.params).reported(so_far).build()
        assert search.should_prune(spec, [*stored[:number], running], running) is pruned


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param(("successive-halving", {"min_resource": 1, "reduction_factor": 2}), id="sh"),
        pytest.param(("hyperband", {"max_resource": 27}), id="hyperband"),
    ],
)
def test_rebuilt_rungs_are_those_a_live_study_recorded(settings: tuple[str, Any]) -> None:
    name, kwargs = settings
    spec = make_spec("random").floats("x").pruner(name, **kwargs).build()
    live = optuna.create_study(study_name=search.STUDY_NAME, pruner=search.make_pruner(spec))

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -5, 5)
        for step in range(1, 28):
            trial.report(abs(x) + 3.0 / step, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return abs(x)

    live.optimize(objective, n_trials=20)
    phase = {TrialState.COMPLETE: "Succeeded", TrialState.PRUNED: "Pruned"}
    stored = [
        make_trial(t.number, **t.params)
        .succeeded(*(t.values or []))
        .phase(phase[t.state])
        .reported(t.intermediate_values)
        .build()
        for t in live.trials
    ]

    def rungs(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
        return {k: v for k, v in trial.system_attrs.items() if k.startswith("completed_rung")}

    rebuilt = search.build_study(spec, stored).trials
    assert [rungs(t) for t in rebuilt] == [rungs(t) for t in live.trials]
    assert any(t.state is TrialState.PRUNED for t in live.trials)


SH_1_3 = {"min_resource": 1, "reduction_factor": 3}  # rungs at steps 1, 3 and 9


def test_a_rung_is_judged_on_its_own_step_and_never_again() -> None:
    # Promoted at its last rung (step 9), a trial runs to its end however its value moves
    # after it, as in a live study: step 10 is no rung.
    spec = make_spec("random").floats("x", "y").pruner("successive-halving", **SH_1_3).build()
    done = finished_with_curves()
    history = {**curve(-1.0), 10: 100.0}
    late = make_trial(12, x=1.0, y=1.0).reported(history).build()
    assert not search.should_prune(spec, [*done, late], late)
    assert not search.should_prune(spec, [*done, late], late, judged_through=9)
    # The same value at step 9, a rung, is judged.
    at_rung = make_trial(12, x=1.0, y=1.0).reported({**curve(-1.0, steps=8), 9: 100.0}).build()
    assert search.should_prune(spec, [*done, at_rung], at_rung, judged_through=8)


def test_rungs_reached_since_the_last_judgment_are_each_judged_on_their_value() -> None:
    # The controller saw steps 1-2, then 3-5 at once: rung 1 (step 3) is judged on the
    # value at step 3, not on the better one at step 5.
    spec = make_spec("random").floats("x", "y").pruner("successive-halving", **SH_1_3).build()
    done = finished_with_curves()
    history = {1: 0.0, 2: 0.0, 3: 100.0, 4: 0.0, 5: 0.0}
    trial = make_trial(12, x=1.0, y=1.0).reported(history).build()
    assert search.should_prune(spec, [*done, trial], trial, judged_through=2)
    # Judged at step 3 before (and promoted, as the controller would have it), steps 4-5
    # reach no new rung: nothing to judge.
    assert not search.should_prune(spec, [*done, trial], trial, judged_through=3)


def test_a_step_already_judged_is_not_judged_again() -> None:
    spec = make_spec("random").floats("x", "y").pruner("median").build()
    hopeless = make_trial(12, x=1.0, y=1.0).reported(curve(10.0)).build()
    trials = [*finished_with_curves(), hopeless]
    assert search.should_prune(spec, trials, hopeless, judged_through=8)
    assert not search.should_prune(spec, trials, hopeless, judged_through=9)


def test_hyperband_with_auto_max_resource_waits_for_a_completed_trial() -> None:
    spec = make_spec("random").floats("x", "y").pruner("hyperband").build()
    pruned = make_trial(0, x=0.0, y=0.0).phase("Pruned").reported(curve(0.0)).build()
    hopeless = make_trial(1, x=1.0, y=1.0).reported(curve(10.0)).build()
    assert not search.should_prune(spec, [pruned, hopeless], hopeless)


@pytest.mark.parametrize(
    ("spec", "hopeless"),
    [
        pytest.param(
            make_spec("random").floats("x", "y"),
            make_trial(12, x=1.0, y=1.0).reported(curve(10.0)),
            id="no-early-stopping",
        ),
        pytest.param(
            make_spec("random").floats("x", "y").pruner("median"),
            make_trial(12, x=1.0, y=1.0),
            id="nothing-reported-yet",
        ),
        pytest.param(
            make_spec("random").floats("x", "y").pruner("median"),
            make_trial(12, x=1.0, y=1.0).reported(curve(10.0)).phase("Failed"),
            id="not-running",
        ),
        pytest.param(
            make_spec("random").floats("x", "y").pruner("median"),
            make_trial(12, x=99.0, y=1.0).reported(curve(10.0)),
            id="params-out-of-the-space",
        ),
        pytest.param(
            make_spec("random").floats("x", "y").also("latency", "minimize").pruner("median"),
            make_trial(12, x=1.0, y=1.0).reported(curve(10.0)),
            id="multi-objective",
        ),
    ],
)
def test_a_trial_is_not_pruned_when_pruning_does_not_apply(
    spec: SpecBuilder, hopeless: TrialBuilder
) -> None:
    built = spec.build()
    done = [
        make_trial(i, x=0.0, y=0.0).succeeded(*[0.1 * i] * len(built.objective.metrics))
        for i in range(12)
    ]
    trials = [t.reported(curve(0.0)).build() for t in done]
    trial = hopeless.build()
    assert not search.should_prune(built, [*trials, trial], trial)


def test_a_trial_missing_from_the_list_is_judged_as_the_last() -> None:
    spec = make_spec("random").floats("x", "y").pruner("median").build()
    hopeless = make_trial(12, x=1.0, y=1.0).reported(curve(10.0)).build()
    assert search.should_prune(spec, finished_with_curves(), hopeless)


def test_the_trial_is_judged_as_given_not_as_the_list_has_it() -> None:
    spec = make_spec("random").floats("x", "y").pruner("median").build()
    stale = make_trial(12, x=1.0, y=1.0).reported({1: 0.1}).build()
    fresh = make_trial(12, x=1.0, y=1.0).reported(curve(10.0, steps=4)).build()
    assert search.should_prune(spec, [*finished_with_curves(), stale], fresh)


# -- ranking ---------------------------------------------------------------------------


def test_the_best_trial_is_the_lowest_value_and_the_lower_number_on_a_tie() -> None:
    spec = make_spec("random").floats("x").build()
    trials = [
        make_trial(0, x=0.0).phase("Failed").build(),
        make_trial(1, x=1.0).succeeded(0.5).build(),
        make_trial(2, x=2.0).succeeded(0.2).build(),
        make_trial(3, x=3.0).succeeded(0.2).build(),
        make_trial(4, x=4.0).phase("Pruned").reported({1: 0.0}).build(),
        make_trial(5, x=5.0).reported({1: 0.0}).build(),
    ]
    trials[2].status.run_id = "run-2"
    best, front = search.best(spec, list(reversed(trials)))
    assert best is not None
    assert (best.name, best.params, best.values, best.run_id) == (
        "exp-2",
        {"x": 2.0},
        [0.2],
        "run-2",
    )
    assert front == []


def test_the_best_trial_when_maximizing() -> None:
    spec = make_spec("random").floats("x").maximize().build()
    trials = [make_trial(i, x=0.0).succeeded(v).build() for i, v in enumerate([0.5, 0.9, 0.1])]
    best, _ = search.best(spec, trials)
    assert best is not None
    assert best.name == "exp-1"


def test_no_best_before_a_trial_succeeds() -> None:
    spec = make_spec("random").floats("x").build()
    assert search.best(spec, [make_trial(0, x=0.0).build()]) == (None, [])


def test_multi_objective_gives_the_pareto_front_in_number_order() -> None:
    spec = make_spec("random").floats("x").maximize().also("latency", "minimize").build()
    values = [(0.9, 30.0), (0.8, 10.0), (0.7, 20.0), (0.95, 40.0), (0.8, 10.0)]
    trials = [make_trial(i, x=0.0).succeeded(*v).build() for i, v in enumerate(values)]
    trials.append(make_trial(5, x=0.0).succeeded(0.99).build())  # one value: not ranked
    best, front = search.best(spec, trials)
    assert best is None
    assert [t.name for t in front] == ["exp-0", "exp-1", "exp-3", "exp-4"]
    assert front[1].values == [0.8, 10.0]


@pytest.mark.parametrize(
    ("spec", "values", "reached"),
    [
        pytest.param(make_spec().target(0.1), [0.1], True, id="minimize-at-target"),
        pytest.param(make_spec().target(0.1), [0.2], False, id="minimize-above-target"),
        pytest.param(make_spec().maximize().target(0.9), [0.95], True, id="maximize-beyond"),
        pytest.param(make_spec().maximize().target(0.9), [0.5], False, id="maximize-short"),
        pytest.param(make_spec(), [0.0], False, id="no-target"),
        pytest.param(make_spec().target(0.1), [], False, id="no-value"),
        pytest.param(
            make_spec().target(0.1).also("latency", "minimize"),
            [0.0, 0.0],
            False,
            id="multi-objective-has-no-target",
        ),
    ],
)
def test_reached_target(spec: SpecBuilder, values: list[float], reached: bool) -> None:
    assert search.reached_target(spec.floats("x").build(), values) is reached


# -- the trial template ----------------------------------------------------------------

TEMPLATE = {
    "trainer": {
        "command": ["python", "train.py", "--lr=${trial.params.lr}"],
        "args": ["--layers", "${trial.params.layers}", "${trial.params.act}"],
        "env": [{"name": "OPT", "value": "${trial.params.act}-${trial.params.layers}"}],
        "numNodes": 2,
        "resourcesPerNode": {"requests": {"cpu": "1"}},
    },
    "queue": "q",
}


def test_substitute_replaces_every_placeholder_as_text_and_leaves_the_rest() -> None:
    original = copy.deepcopy(TEMPLATE)
    got = search.substitute(TEMPLATE, {"lr": 0.001, "layers": 3, "act": "relu", "unused": 1})
    assert got["trainer"]["command"] == ["python", "train.py", "--lr=0.001"]
    assert got["trainer"]["args"] == ["--layers", "3", "relu"]
    assert got["trainer"]["env"] == [{"name": "OPT", "value": "relu-3"}]
    assert got["trainer"]["numNodes"] == 2
    assert got["queue"] == "q"
    assert original == TEMPLATE  # a copy: the template is untouched
    got["trainer"]["resourcesPerNode"]["requests"]["cpu"] = "2"
    assert original == TEMPLATE


def test_substitute_refuses_a_placeholder_with_no_value() -> None:
    with pytest.raises(ValueError, match=r"\$\{trial.params.act\} names no parameter"):
        search.substitute(TEMPLATE, {"lr": 0.1, "layers": 3})


def test_placeholders_are_the_names_the_template_uses() -> None:
    assert search.placeholders(TEMPLATE) == {"lr", "layers", "act"}
    assert search.placeholders({"a": ["${trial.params.}", "$trial.params.x", 5]}) == {""}


# -- packaging -------------------------------------------------------------------------


def test_importing_cnai_and_the_tuning_kinds_does_not_import_optuna() -> None:
    code = (
        "import sys, cnai, cnai.tuning, cnai.tuning.api, cnai.tuning.admission; "
        "assert 'optuna' not in sys.modules, 'optuna imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
