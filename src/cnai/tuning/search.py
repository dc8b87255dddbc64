"""The bridge between stored Trials and Optuna: rebuild a study, ask it, prune, rank.

The Experiment controller keeps no Optuna state. Every decision starts from the stored
:class:`~cnai.tuning.api.Trial` objects: :func:`build_study` turns them into an in-memory
study (Succeeded -> COMPLETE, Pruned -> PRUNED, Failed -> FAIL, Running -> RUNNING, in
``spec.number`` order, so study trial ``i`` is the ``i``-th stored trial), then
:func:`suggest` asks it for the next point and :func:`should_prune` asks its pruner
about a running trial. Nothing is told back: the caller stores a new Trial instead.

Some of Optuna's algorithms keep state inside the trials they wrote (system attributes),
which a study rebuilt from plain values lacks. It is rebuilt here from the trials too:

- CMA-ES and NSGA-II keep their generations (and CMA-ES its optimizer) there: the stored
  trials are replayed through the sampler in number order, each asked then told, so the
  sampler rebuilds its generations from the parameters the trials really ran with.
- Successive halving and Hyperband keep the value each trial had at each rung: rebuilt
  from its intermediate values (the value at the first step at or past the rung). The
  trial being judged is judged, as in a live study, once per rung and on that value:
  :func:`should_prune` is told up to which step it was judged before (the controller
  polls and may see several new steps at once), judges each rung reached since, and
  never judges a rung again (a trial promoted at its last rung runs to its end).
- The grid sampler hands study trial ``n`` the ``n``-th point of a fixed shuffle (and
  tracks used points by its own attributes, not by parameters): its seed is therefore
  not salted, and :func:`suggest` skips any point a stored trial already used and raises
  :class:`SearchExhausted` once every point is used (:func:`exhausted` tells without
  building a study).

Optuna's informational logging is silenced and its messages go through the platform's
logging; its ExperimentalWarning (WilcoxonPruner, some settings) is ignored around the
calls that emit it, with ``warnings.catch_warnings``, which is not thread-safe before
Python 3.14: call these functions from one thread at a time.
"""

from __future__ import annotations

import inspect
import itertools
import math
import re
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.exceptions import ExperimentalWarning
from optuna.pruners import (
    BasePruner,
    HyperbandPruner,
    MedianPruner,
    SuccessiveHalvingPruner,
    WilcoxonPruner,
)
from optuna.pruners._successive_halving import _estimate_min_resource
from optuna.samplers import (
    BaseSampler,
    CmaEsSampler,
    GPSampler,
    GridSampler,
    NSGAIISampler,
    RandomSampler,
    TPESampler,
)
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from cnai.tuning.api import (
    AlgorithmName,
    BestTrial,
    EarlyStoppingName,
    ExperimentSpec,
    Goal,
    Objective,
    Parameter,
    ParameterType,
    Trial,
    TrialPhase,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
optuna.logging.disable_default_handler()
optuna.logging.enable_propagation()

# Hyperband puts trials in brackets by hashing the study's name with the trial number:
# a fixed name keeps every trial in its bracket across rebuilds.
STUDY_NAME = "cnai-experiment"
MAX_GRID_POINTS = 100_000  # GridSampler lists (and shuffles) every point up front

PLACEHOLDER = re.compile(r"\$\{trial\.params\.([^}]*)\}")

_SAMPLERS: dict[AlgorithmName, type[BaseSampler]] = {
    AlgorithmName.RANDOM: RandomSampler,
    AlgorithmName.GRID: GridSampler,
    AlgorithmName.TPE: TPESampler,
    AlgorithmName.CMAES: CmaEsSampler,
    AlgorithmName.GP: GPSampler,
    AlgorithmName.NSGA2: NSGAIISampler,
}
_PRUNERS: dict[EarlyStoppingName, type[BasePruner]] = {
    EarlyStoppingName.MEDIAN: MedianPruner,
    EarlyStoppingName.SUCCESSIVE_HALVING: SuccessiveHalvingPruner,
    EarlyStoppingName.HYPERBAND: HyperbandPruner,
    EarlyStoppingName.WILCOXON: WilcoxonPruner,
}
# Samplers whose state lives in the trials they asked for: rebuilt by replaying them.
_REPLAYED = (AlgorithmName.CMAES, AlgorithmName.NSGA2)
# Sampler settings a manifest may not give, and why.
_RESERVED = {
    "seed": "set spec.algorithm.seed instead",
    "search_space": "the grid is spec.parameters",
    # CMA-ES with margin tells its optimizer the point it proposed, which a replay
    # (where the trial's real parameters are told) does not have.
    "with_margin": "not supported: the optimizer is rebuilt from the trials' parameters",
}
_PLAIN_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "None": (type(None),),
    "dict": (dict,),
    "list": (list,),
    "Any": (object,),
}
_DIRECTIONS = {Goal.MINIMIZE: StudyDirection.MINIMIZE, Goal.MAXIMIZE: StudyDirection.MAXIMIZE}
_STATES = {
    TrialPhase.SUCCEEDED: TrialState.COMPLETE,
    TrialPhase.PRUNED: TrialState.PRUNED,
    TrialPhase.FAILED: TrialState.FAIL,
    TrialPhase.RUNNING: TrialState.RUNNING,
}

GridValue = str | int | float | bool
_Point = tuple[float, ...]  # a point's values as Optuna's internal numbers, by parameter
_T = TypeVar("_T")


class SearchExhausted(Exception):
    """The grid has no unused point left: the search is complete."""


@contextmanager
def _quiet() -> Iterator[None]:
    """Ignore Optuna's ExperimentalWarning (only it) around a call into Optuna."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ExperimentalWarning)
        yield


# -- the search space ------------------------------------------------------------------


def distributions(parameters: list[Parameter]) -> dict[str, BaseDistribution]:
    """Optuna's distribution of each parameter, by name."""
    return {p.name: _distribution(p) for p in parameters}


def _distribution(p: Parameter) -> BaseDistribution:
    if p.type is ParameterType.CATEGORICAL:
        return CategoricalDistribution(p.values)
    if p.min is None or p.max is None:
        raise ValueError(f"parameter {p.name!r} needs min and max")
    if p.type is ParameterType.INT:
        low, step = int(p.min), int(p.step or 1)
        high = low + (int(p.max) - low) // step * step  # as Optuna would, without its warning
        return IntDistribution(low, high, log=p.log, step=step)
    top = p.max if p.step is None else _float_high(p.min, p.max, p.step)
    return FloatDistribution(p.min, top, log=p.log, step=p.step)


def _float_high(low: float, high: float, step: float) -> float:
    """The last point of the range on the step (Optuna's rule, which warns if it moves)."""
    d_low, d_step = Decimal(str(low)), Decimal(str(step))
    return float((Decimal(str(high)) - d_low) // d_step * d_step + d_low)


def directions(objective: Objective) -> list[str]:
    """Which way each metric of the objective goes: "minimize" or "maximize"."""
    return [m.goal.value for m in objective.metrics]


def grid(parameters: list[Parameter]) -> dict[str, list[GridValue]]:
    """Every value of every parameter on the grid (floats need a step)."""
    return {name: _grid_values(name, d) for name, d in distributions(parameters).items()}


def grid_size(parameters: list[Parameter]) -> int:
    return math.prod(len(values) for values in grid(parameters).values())


def _grid_values(name: str, dist: BaseDistribution) -> list[GridValue]:
    if isinstance(dist, CategoricalDistribution):
        return [v for v in dist.choices if v is not None]  # api values are never None
    if isinstance(dist, IntDistribution):
        return list(range(dist.low, dist.high + 1, dist.step))
    assert isinstance(dist, FloatDistribution)
    if dist.step is None:
        raise ValueError(f"grid search needs a step for float parameter {name!r}")
    low, step = Decimal(str(dist.low)), Decimal(str(dist.step))
    count = int((Decimal(str(dist.high)) - low) / step) + 1
    return [float(low + k * step) for k in range(count)]


# -- samplers and pruners --------------------------------------------------------------


def make_sampler(spec: ExperimentSpec, salt: int) -> BaseSampler:
    """The experiment's sampler, seeded with ``seed + salt`` (the grid's order: ``seed``)."""
    algorithm = spec.algorithm
    cls = _SAMPLERS[algorithm.name]
    kwargs = _checked_settings(cls, algorithm.settings, _RESERVED)
    if algorithm.name is AlgorithmName.GRID:
        space = grid(spec.parameters)
        if (size := math.prod(len(v) for v in space.values())) > MAX_GRID_POINTS:
            raise ValueError(f"the grid has {size} points, more than {MAX_GRID_POINTS}")
        return _construct(GridSampler, space, seed=algorithm.seed)
    seed = None if algorithm.seed is None else algorithm.seed + salt
    return _construct(cls, seed=seed, **kwargs)


def make_pruner(spec: ExperimentSpec) -> BasePruner | None:
    """The experiment's pruner, or None without early stopping.

    Hyperband's ``max_resource`` defaults to "auto" as in Optuna: the last step of the
    completed trials, plus one. It needs a completed trial, so nothing is pruned before
    the first one; give ``max_resource`` (the steps a trial runs) to prune from the start.
    """
    stopping = spec.early_stopping
    if stopping is None:
        return None
    cls = _PRUNERS[stopping.name]
    return _construct(cls, **_checked_settings(cls, stopping.settings, {}))


def sampler_problem(spec: ExperimentSpec) -> str | None:
    """Why the algorithm's settings are refused, or None (for admission)."""
    return _problem(lambda: make_sampler(spec, 0))


def pruner_problem(spec: ExperimentSpec) -> str | None:
    """Why the early-stopping settings are refused, or None (for admission)."""
    return _problem(lambda: _try_pruner(spec))


def _try_pruner(spec: ExperimentSpec) -> None:
    """Make the pruner and judge a made-up running trial once: some settings fail only
    when used (Hyperband's min_resource=0 divides by zero) or make it never prune."""
    pruner = make_pruner(spec)
    if pruner is None:
        return
    settings = spec.early_stopping.settings if spec.early_stopping else {}
    most, least = settings.get("max_resource"), settings.get("min_resource", 1)
    if isinstance(pruner, HyperbandPruner) and isinstance(most, int) and most < least:
        raise ValueError(f"max_resource must be >= min_resource ({least})")
    study = optuna.create_study(study_name=STUDY_NAME, pruner=pruner)
    steps = {step: 1.0 / step for step in range(1, 9)}
    study.add_trials(create_trial(value=v, intermediate_values=steps) for v in (0.1, 0.2))
    study.add_trial(create_trial(state=TrialState.RUNNING, intermediate_values=steps))
    try:
        with _quiet():
            pruner.prune(study, study.get_trials(deepcopy=False)[-1])
    except ArithmeticError as exc:
        raise ValueError(f"{type(pruner).__name__} fails with these settings: {exc}") from None


def _problem(make: Callable[[], object]) -> str | None:
    # A deprecated setting works but warns on every rebuild: refuse it up front.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            make()
        except (TypeError, ValueError) as exc:
            return str(exc)
    for w in caught:
        if issubclass(w.category, (FutureWarning, DeprecationWarning)):
            return str(w.message)
    return None


def _construct(cls: type[_T], *args: Any, **kwargs: Any) -> _T:
    try:
        with _quiet():
            return cls(*args, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{cls.__name__}: {exc}") from None


def _checked_settings(
    cls: type[Any], settings: Mapping[str, Any], reserved: Mapping[str, str]
) -> dict[str, Any]:
    """The settings as keyword arguments of ``cls``, each a known keyword with a plain
    (JSON) value of its declared type; else ValueError naming the setting."""
    keywords = {
        name: p
        for name, p in inspect.signature(cls).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    for name, value in settings.items():
        if name in reserved:
            raise ValueError(f"setting {name!r}: {reserved[name]}")
        if name not in keywords:
            known = ", ".join(sorted(set(keywords) - set(reserved))) or "none"
            raise ValueError(f"unknown setting {name!r} of {cls.__name__} (known: {known})")
        annotation = keywords[name].annotation
        types = _plain_types(annotation)
        if types is None:
            raise ValueError(f"setting {name!r} takes a Python object, not a manifest value")
        if not _has_type(value, types):
            raise ValueError(f"setting {name!r} must be {_annotation_text(annotation)}")
    return dict(settings)


def _annotation_text(annotation: Any) -> str:
    if isinstance(annotation, str):
        return annotation
    return str(getattr(annotation, "__name__", annotation))


def _plain_types(annotation: Any) -> tuple[type, ...] | None:
    """The Python types a JSON value may have for this annotation; None if it takes
    objects (callables, samplers, operators) or has no annotation."""
    if annotation is inspect.Parameter.empty:
        return None
    types: tuple[type, ...] = ()
    for part in _union_parts(_annotation_text(annotation)):
        plain = _PLAIN_TYPES.get(part.split("[", 1)[0].strip())
        if plain is None:
            return None
        types += plain
    return types


def _union_parts(text: str) -> list[str]:
    """``a | b[c | d]`` -> ``[a, b[c | d]]``: split on the top-level ``|`` only."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if char == "|" and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]


def _has_type(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool) and bool not in types and object not in types:
        return False
    return isinstance(value, types)


# -- rebuilding the study --------------------------------------------------------------


def build_study(spec: ExperimentSpec, trials: list[Trial]) -> Study:
    """An in-memory study holding every trial, with the sampler (salted with the number of
    trials) and the pruner, ready to ask."""
    sampler = make_sampler(spec, salt=len(trials))
    return _build(spec, trials, sampler, replay=spec.algorithm.name in _REPLAYED)


def _build(
    spec: ExperimentSpec,
    trials: list[Trial],
    sampler: BaseSampler,
    *,
    replay: bool = False,
    judged: int | None = None,
) -> Study:
    dists = distributions(spec.parameters)
    frozen = [_frozen(spec, dists, t) for t in _ordered(trials)]
    pruner = make_pruner(spec)
    rungs = _rung_attrs(spec, pruner, frozen, judged)
    frozen = [_with_attrs(t, attrs) for t, attrs in zip(frozen, rungs, strict=True)]
    study = _new_study(spec, sampler, pruner)
    if replay:
        _replay(study, frozen)
    else:
        study.add_trials(frozen)
    return study


def _new_study(
    spec: ExperimentSpec, sampler: BaseSampler | None, pruner: BasePruner | None
) -> Study:
    return optuna.create_study(
        study_name=STUDY_NAME,
        directions=[_DIRECTIONS[m.goal] for m in spec.objective.metrics],
        sampler=sampler or RandomSampler(seed=0),
        pruner=pruner or optuna.pruners.NopPruner(),
    )


def _ordered(trials: list[Trial]) -> list[Trial]:
    return sorted(trials, key=lambda t: (t.spec.number, t.metadata.name))


def _frozen(spec: ExperimentSpec, dists: dict[str, BaseDistribution], trial: Trial) -> FrozenTrial:
    """The trial as Optuna's FrozenTrial; FAIL if its parameters or values do not fit."""
    status = trial.status
    intermediate = _intermediate(status.intermediate)
    params = _fitted(trial.spec.params, dists)
    state = _STATES[status.phase]
    values: list[float] | None = None
    if state is TrialState.COMPLETE:
        values = list(status.values)
        if not _valid_values(values, len(spec.objective.metrics)):
            state, values = TrialState.FAIL, None
    if params is None:
        state, values, params = TrialState.FAIL, None, {}
    return create_trial(
        state=state,
        values=values,
        params=params,
        distributions={name: dists[name] for name in params},
        intermediate_values=intermediate,
    )


def _with_attrs(trial: FrozenTrial, system_attrs: dict[str, Any]) -> FrozenTrial:
    if not system_attrs:
        return trial
    return create_trial(
        state=trial.state,
        values=trial.values,
        params=trial.params,
        distributions=trial.distributions,
        intermediate_values=trial.intermediate_values,
        system_attrs=system_attrs,
    )


def _intermediate(values: Mapping[str, float]) -> dict[int, float]:
    steps = {}
    for step, value in values.items():
        try:
            steps[int(step)] = float(value)
        except ValueError:
            continue  # not a step: nothing a pruner can use
    return dict(sorted(steps.items()))


def _valid_values(values: list[float], count: int) -> bool:
    return len(values) == count and not any(math.isnan(v) for v in values)


def _fitted(params: Mapping[str, Any], dists: dict[str, BaseDistribution]) -> dict[str, Any] | None:
    """The parameters in their distributions' types, or None if any does not fit."""
    if set(params) != set(dists):
        return None
    fitted = {}
    for name, dist in dists.items():
        value = _external(params[name], dist)
        if value is None:
            return None
        fitted[name] = value
    return fitted


def _external(value: Any, dist: BaseDistribution) -> Any:
    """``value`` as ``dist`` hands it out (int, float or the choice), or None."""
    if not isinstance(dist, CategoricalDistribution) and (
        isinstance(value, bool) or not isinstance(value, int | float)
    ):
        return None
    if isinstance(dist, IntDistribution) and not float(value).is_integer():
        return None
    try:
        internal = dist.to_internal_repr(value)
    except ValueError:
        return None
    if not dist._contains(internal):
        return None
    return dist.to_external_repr(internal)


def _replay(study: Study, trials: list[FrozenTrial]) -> None:
    """Add each trial as asked-then-told, so the sampler rebuilds the state it keeps in
    trials (CMA-ES's optimizer, NSGA-II's generations) from the real parameters."""
    sampler = study.sampler
    for trial in trials:
        study.add_trial(_running(trial))
        added = study.get_trials(deepcopy=False)[-1]
        with _quiet():
            space = sampler.infer_relative_search_space(study, added)
            sampler.sample_relative(study, added, space)  # the point is not used
        if trial.state is not TrialState.RUNNING:
            study.tell(added.number, trial.values, state=trial.state)


def _running(trial: FrozenTrial) -> FrozenTrial:
    return create_trial(
        state=TrialState.RUNNING,
        params=trial.params,
        distributions=trial.distributions,
        intermediate_values=trial.intermediate_values,
        system_attrs=trial.system_attrs,
    )


# -- the pruners' rungs ----------------------------------------------------------------

_Halving = tuple[int, int, int]  # (min_resource, reduction_factor, min_early_stopping_rate)


def _rung_attrs(
    spec: ExperimentSpec,
    pruner: BasePruner | None,
    trials: list[FrozenTrial],
    judged: int | None,
) -> list[dict[str, Any]]:
    """Successive halving's ``completed_rung_K`` attributes of each trial, rebuilt from
    its intermediate values; the judged trial gets those of the steps before its last
    (the rungs it passed before; the pruner judges the last step). Keep in sync with
    optuna/pruners/_successive_halving.py and _hyperband.py (the tests pin both)."""
    none: list[dict[str, Any]] = [{} for _ in trials]
    halving = _halving_plans(spec, pruner, trials)
    if halving is None:
        return none
    attrs = []
    for i, (t, plan) in enumerate(zip(trials, halving, strict=True)):
        values = t.intermediate_values
        if i == judged and values:
            last = max(values)
            values = {s: v for s, v in values.items() if s < last}
        attrs.append(_rungs(values, plan))
    return attrs


def _halving_plans(
    spec: ExperimentSpec, pruner: BasePruner | None, trials: list[FrozenTrial]
) -> list[_Halving] | None:
    """The successive halving each trial is judged by, or None if the pruner has no rungs
    or cannot judge yet."""
    if not isinstance(pruner, SuccessiveHalvingPruner | HyperbandPruner):
        return None
    study = _new_study(spec, None, None)
    study.add_trials(trials)
    numbered = study.get_trials(deepcopy=False)
    halving = _halving(pruner, study, numbered)
    return None if halving is None else [halving(t) for t in numbered]


def _halving(
    pruner: BasePruner, study: Study, trials: list[FrozenTrial]
) -> Callable[[FrozenTrial], _Halving] | None:
    """A function giving each trial the successive halving it is judged by, or None if
    the pruner cannot judge yet ("auto" resources without a completed trial)."""
    if isinstance(pruner, SuccessiveHalvingPruner):
        least = pruner._min_resource or _estimate_min_resource(trials)
        if least is None:
            return None
        plan = (least, pruner._reduction_factor, pruner._min_early_stopping_rate)
        return lambda t: plan
    assert isinstance(pruner, HyperbandPruner)
    pruner._try_initialization(study)
    if not pruner._pruners:
        return None

    def bracket(trial: FrozenTrial) -> _Halving:
        sh = pruner._pruners[pruner._get_bracket_id(study, trial)]
        assert sh._min_resource is not None
        return (sh._min_resource, sh._reduction_factor, sh._min_early_stopping_rate)

    return bracket


def _rungs(intermediate: dict[int, float], halving: _Halving) -> dict[str, float]:
    """The value at the first step at or past each rung's promotion step."""
    return {
        f"completed_rung_{rung}": intermediate[step]
        for rung, step in enumerate(_rung_steps(intermediate, halving))
    }


def _rung_steps(intermediate: Mapping[int, float], halving: _Halving) -> list[int]:
    """The steps a live study judges the trial at: the first reported step at or past
    each rung's promotion step."""
    least, factor, rate = halving
    steps = sorted(intermediate)
    judged: list[int] = []
    while reached := [s for s in steps if s >= least * factor ** (rate + len(judged))]:
        judged.append(reached[0])
    return judged


# -- asking ----------------------------------------------------------------------------


def suggest(spec: ExperimentSpec, trials: list[Trial]) -> dict[str, Any]:
    """The next point to try, given every stored trial. The study is told nothing: to ask
    for several points, add each new (Running) Trial to ``trials`` before the next ask.
    Raises :class:`SearchExhausted` when a grid has no unused point left."""
    dists = distributions(spec.parameters)
    if spec.algorithm.name is AlgorithmName.GRID:
        return _next_grid_point(spec, trials, dists)
    if spec.algorithm.name is AlgorithmName.RANDOM:
        # Random search reads no history: the same seed gives the same point from an
        # empty study, without rebuilding thousands of trials for every new one.
        study = _new_study(spec, make_sampler(spec, salt=len(trials)), None)
    else:
        study = build_study(spec, trials)
    with _quiet():
        asked = study.ask(dists)
    return {name: _json(asked.params[name], d) for name, d in dists.items()}


def _next_grid_point(
    spec: ExperimentSpec, trials: list[Trial], dists: dict[str, BaseDistribution]
) -> dict[str, Any]:
    """Ask until the grid sampler gives a point no stored trial used. It gives study trial
    ``n`` the ``n``-th point of its order, so the first ask succeeds when the stored trials
    took their points in order; later asks walk the rest of the grid."""
    points, used = _grid_points(spec, dists), _used_points(trials, dists)
    if points <= used:
        raise SearchExhausted(f"every one of the {len(points)} grid points has been tried")
    study = build_study(spec, trials)
    for _ in range(2 * len(points)):
        with _quiet():
            asked = study.ask(dists)
        if _point(asked.params, dists) not in used:
            return {name: _json(asked.params[name], d) for name, d in dists.items()}
    raise SearchExhausted("the grid sampler gives only points already tried")


def exhausted(spec: ExperimentSpec, trials: list[Trial]) -> bool:
    """Whether :func:`suggest` would raise :class:`SearchExhausted`, without building a
    study: only a grid whose every point a trial used is exhausted."""
    if spec.algorithm.name is not AlgorithmName.GRID:
        return False
    dists = distributions(spec.parameters)
    return _grid_points(spec, dists) <= _used_points(trials, dists)


def _grid_points(spec: ExperimentSpec, dists: dict[str, BaseDistribution]) -> set[_Point]:
    space = grid(spec.parameters)
    names = list(space)
    return {
        _point(dict(zip(names, values, strict=True)), dists)
        for values in itertools.product(*space.values())
    }


def _used_points(trials: list[Trial], dists: dict[str, BaseDistribution]) -> set[_Point]:
    return {
        _point(fitted, dists)
        for t in trials
        if (fitted := _fitted(t.spec.params, dists)) is not None
    }


def _point(params: Mapping[str, Any], dists: dict[str, BaseDistribution]) -> _Point:
    """A point as comparable numbers (categorical values by index)."""
    return tuple(dist.to_internal_repr(params[name]) for name, dist in dists.items())


def _json(value: Any, dist: BaseDistribution) -> Any:
    """A sampler's value (perhaps a numpy scalar) as a plain int, float or choice."""
    return dist.to_external_repr(dist.to_internal_repr(value))


# -- pruning ---------------------------------------------------------------------------


def should_prune(
    spec: ExperimentSpec, trials: list[Trial], trial: Trial, judged_through: int | None = None
) -> bool:
    """Whether the pruner stops the running ``trial`` now, given every stored trial.

    ``judged_through`` is the last step the trial was judged at before (None: never).
    Only the steps after it are judged, as a live study judges each step once when it is
    reported: the median and Wilcoxon pruners judge the last step; successive halving and
    Hyperband judge each rung reached since, each on the value of its first step.
    """
    if spec.early_stopping is None or len(spec.objective.metrics) > 1:
        return False
    steps = _intermediate(trial.status.intermediate)
    if trial.status.phase is not TrialPhase.RUNNING or not steps:
        return False
    if judged_through is not None and max(steps) <= judged_through:
        return False  # nothing new since it was judged
    # The trial as given, wherever the list has it (or an older copy of it).
    name = trial.metadata.name
    ordered = _ordered([*(t for t in trials if t.metadata.name != name), trial])
    position = next(i for i, t in enumerate(ordered) if t.metadata.name == name)
    for upto in _judged_steps(spec, ordered, position, steps, judged_through):
        judged = _up_to(trial, upto)
        at = [judged if i == position else t for i, t in enumerate(ordered)]
        study = _build(spec, at, RandomSampler(seed=0), judged=position)
        frozen = study.get_trials(deepcopy=False)[position]
        if frozen.state is not TrialState.RUNNING:
            return False  # its parameters no longer fit the space
        with _quiet():
            if study.pruner.prune(study, frozen):
                return True
    return False


def _judged_steps(
    spec: ExperimentSpec,
    ordered: list[Trial],
    position: int,
    steps: dict[int, float],
    judged_through: int | None,
) -> list[int]:
    """The steps of ``steps`` (the judged trial's history) to judge now, in order."""
    after = -math.inf if judged_through is None else judged_through
    pruner = make_pruner(spec)
    if not isinstance(pruner, SuccessiveHalvingPruner | HyperbandPruner):
        return [max(steps)]
    dists = distributions(spec.parameters)
    plans = _halving_plans(spec, pruner, [_frozen(spec, dists, t) for t in ordered])
    if plans is None:
        return []  # no rungs yet ("auto" resources before a completed trial)
    return sorted({s for s in _rung_steps(steps, plans[position]) if s > after})


def _up_to(trial: Trial, step: int) -> Trial:
    """The trial as it was when ``step`` was its last report."""
    status = trial.status.model_copy(
        update={
            "intermediate": {k: v for k, v in trial.status.intermediate.items() if _step(k) <= step}
        }
    )
    return trial.model_copy(update={"status": status})


def _step(key: str) -> float:
    try:
        return int(key)
    except ValueError:
        return math.inf


# -- ranking ---------------------------------------------------------------------------


def best(spec: ExperimentSpec, trials: list[Trial]) -> tuple[BestTrial | None, list[BestTrial]]:
    """The best Succeeded trial (single objective; on a tie the lower number) and the
    Pareto front (multi-objective, in number order); the other one is empty."""
    count = len(spec.objective.metrics)
    done = [
        t
        for t in _ordered(trials)
        if t.status.phase is TrialPhase.SUCCEEDED and _valid_values(t.status.values, count)
    ]
    if not done:
        return None, []
    if count == 1:
        sign = 1.0 if spec.objective.goal is Goal.MINIMIZE else -1.0
        return _best_trial(min(done, key=lambda t: sign * t.status.values[0])), []
    study = _new_study(spec, None, None)
    study.add_trials(create_trial(values=t.status.values) for t in done)
    front = sorted(t.number for t in study.best_trials)
    return None, [_best_trial(done[i]) for i in front]


def _best_trial(trial: Trial) -> BestTrial:
    return BestTrial(
        name=trial.metadata.name,
        params=dict(trial.spec.params),
        values=list(trial.status.values),
        run_id=trial.status.run_id,
    )


def reached_target(spec: ExperimentSpec, values: Sequence[float]) -> bool:
    """Whether a single objective's ``values`` are at least as good as its target."""
    objective = spec.objective
    if objective.target is None or objective.additional or len(values) != 1:
        return False
    if objective.goal is Goal.MINIMIZE:
        return values[0] <= objective.target
    return values[0] >= objective.target


# -- the trial template ----------------------------------------------------------------


def placeholders(template: Any) -> set[str]:
    """Every NAME of a ``${trial.params.NAME}`` in the template's strings."""
    found: set[str] = set()
    for text in _strings(template):
        found.update(PLACEHOLDER.findall(text))
    return found


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def substitute(template: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the JSON-like template with every ``${trial.params.NAME}`` in its
    strings replaced by ``str(value)`` (always as text: manifests carry strings there).
    Keys are left alone. Raises ValueError for a NAME with no value."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise ValueError(f"${{trial.params.{name}}} names no parameter")
        return str(params[name])

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return PLACEHOLDER.sub(replace, value)
        if isinstance(value, dict):
            return {key: walk(item) for key, item in value.items()}
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    result: dict[str, Any] = walk(template)
    return result
