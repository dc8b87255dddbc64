"""Admission rules for Experiments: a well-formed search space and objective, settings
the sampler and the pruner accept, a trial template that is a valid TrainJob whatever
point it gets, and a search that does not change once made (only its budget may).

The settings are checked by constructing the sampler and the pruner once
(:mod:`cnai.tuning.search`), so Optuna is imported when the first Experiment is
admitted, not when the kind is registered. The template is checked with the TrainJob
rules (and through them the Pod kind's), with its placeholders filled by a value of each
parameter and field paths under ``spec.trialTemplate``.
"""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import ValidationError

from cnai.core.admission import validation_causes
from cnai.core.errors import FieldError
from cnai.core.meta import ObjectMeta
from cnai.core.registry import Validator
from cnai.training.admission import trainjob_validator
from cnai.training.api import TrainJob, TrainJobSpec
from cnai.tuning.api import (
    AlgorithmName,
    Experiment,
    ExperimentSpec,
    Objective,
    Parameter,
    ParameterType,
)

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
METRIC = re.compile(r"^[A-Za-z0-9_\-./ ]+$")
MAX_METRIC_KEY = 250  # keep in sync with cnai.tracking.store.MAX_KEY_LENGTH
MULTI_OBJECTIVE = (
    AlgorithmName.RANDOM,
    AlgorithmName.GRID,
    AlgorithmName.TPE,
    AlgorithmName.NSGA2,
    AlgorithmName.GP,
)
# The budget may change while the search runs; every other spec field may not.
MUTABLE = ("max_trials", "parallel_trials", "max_failed_trials", "retain_trial_jobs")


# -- the search space ------------------------------------------------------------------


def _space_errors(parameters: list[Parameter]) -> list[FieldError]:
    if not parameters:
        return [FieldError("spec.parameters", "needs at least one parameter", "FieldValueRequired")]
    errors = []
    seen: set[str] = set()
    for i, p in enumerate(parameters):
        at = f"spec.parameters[{i}]"
        if p.name in seen:
            errors.append(
                FieldError(f"{at}.name", "names a parameter twice", "FieldValueDuplicate")
            )
        elif not NAME.match(p.name):
            errors.append(FieldError(f"{at}.name", f"must match {NAME.pattern[1:-1]}"))
        seen.add(p.name)
        if p.type is ParameterType.CATEGORICAL:
            errors.extend(_categorical_errors(at, p))
        else:
            errors.extend(_range_errors(at, p))
    return errors


def _categorical_errors(at: str, p: Parameter) -> list[FieldError]:
    errors = [
        FieldError(f"{at}.{field}", "only for float and int parameters", "FieldValueForbidden")
        for field, given in (
            ("min", p.min is not None),
            ("max", p.max is not None),
            ("step", p.step is not None),
            ("log", p.log),
        )
        if given
    ]
    if not p.values:
        errors.append(FieldError(f"{at}.values", "needs at least one value", "FieldValueRequired"))
    for j, value in enumerate(p.values):
        if isinstance(value, float) and not math.isfinite(value):
            errors.append(FieldError(f"{at}.values[{j}]", "must be a finite number"))
        # Optuna finds a choice by ==, so 1, 1.0 and True are one choice.
        elif any(value == earlier for earlier in p.values[:j]):
            message = "equals an earlier value"
            errors.append(FieldError(f"{at}.values[{j}]", message, "FieldValueDuplicate"))
    return errors


def _range_errors(at: str, p: Parameter) -> list[FieldError]:
    errors = []
    if p.values:
        message = "only for categorical parameters"
        errors.append(FieldError(f"{at}.values", message, "FieldValueForbidden"))
    for field, value in (("min", p.min), ("max", p.max), ("step", p.step)):
        if value is None:
            if field != "step":
                message = "is required for float and int parameters"
                errors.append(FieldError(f"{at}.{field}", message, "FieldValueRequired"))
        elif not math.isfinite(value):
            errors.append(FieldError(f"{at}.{field}", "must be a finite number"))
        elif p.type is ParameterType.INT and not value.is_integer():
            errors.append(FieldError(f"{at}.{field}", "must be a whole number"))
    if errors or p.min is None or p.max is None:
        return errors
    if p.min > p.max:
        errors.append(FieldError(f"{at}.max", f"must be >= min ({p.min:g})"))
    if p.step is not None and p.step <= 0:
        errors.append(FieldError(f"{at}.step", "must be > 0"))
    if p.log and p.min <= 0:
        errors.append(FieldError(f"{at}.min", "must be > 0 on a log scale"))
    if p.log and p.step is not None and (p.type is ParameterType.FLOAT or p.step != 1):
        # Optuna samples a log scale continuously: a float's step, an int's step but 1.
        message = "cannot be combined with log" + (" (but 1)" if p.type.value == "int" else "")
        errors.append(FieldError(f"{at}.step", message))
    return errors


# -- the objective ---------------------------------------------------------------------


def _objective_errors(objective: Objective) -> list[FieldError]:
    errors = []
    named = [("spec.objective.metric", objective.metric)] + [
        (f"spec.objective.additional[{i}].metric", m.metric)
        for i, m in enumerate(objective.additional)
    ]
    seen: set[str] = set()
    for path, metric in named:
        if metric in seen:
            message = "names a metric already in the objective"
            errors.append(FieldError(path, message, "FieldValueDuplicate"))
        elif (why := metric_key_error(metric)) is not None:
            reason = "FieldValueInvalid" if metric else "FieldValueRequired"
            errors.append(FieldError(path, why, reason))
        seen.add(metric)
    if objective.target is not None:
        if objective.additional:
            errors.append(FieldError("spec.objective.target", "only for a single objective"))
        elif not math.isfinite(objective.target):
            errors.append(FieldError("spec.objective.target", "must be a finite number"))
    return errors


def metric_key_error(key: str) -> str | None:
    """Why ``key`` cannot name a metric the trials log (the tracking server's key rules)."""
    if not key:
        return "is required"
    if len(key) > MAX_METRIC_KEY:
        return f"must be at most {MAX_METRIC_KEY} characters"
    if not METRIC.match(key):
        return "may hold only letters, digits, spaces and _ - . /"
    if key.startswith("/") or ".." in key.split("/"):
        return "must not start with / or contain a .. segment"
    return None


# -- algorithm, early stopping, budget -------------------------------------------------


def _algorithm_errors(spec: ExperimentSpec, space_ok: bool) -> list[FieldError]:
    from cnai.tuning import search  # imports Optuna

    errors = []
    name = spec.algorithm.name
    multi = bool(spec.objective.additional)
    if multi and name not in MULTI_OBJECTIVE:
        allowed = ", ".join(a.value for a in MULTI_OBJECTIVE)
        message = f"{name.value} optimizes a single objective; for several use {allowed}"
        errors.append(FieldError("spec.algorithm.name", message))
    if multi and spec.early_stopping is not None:
        errors.append(FieldError("spec.earlyStopping", "early stopping needs a single objective"))
    if name is AlgorithmName.GRID:
        for i, p in enumerate(spec.parameters):
            if p.type is ParameterType.FLOAT and p.step is None:
                message = "grid search needs a step for float parameters"
                errors.append(FieldError(f"spec.parameters[{i}].step", message))
        if space_ok and not errors:
            size = search.grid_size(spec.parameters)
            if size > search.MAX_GRID_POINTS:
                message = f"the grid has {size} points; at most {search.MAX_GRID_POINTS}"
                errors.append(FieldError("spec.parameters", message, "FieldValueTooMany"))
    # The grid sampler is built from the space: check its settings on a valid grid only.
    buildable = name is not AlgorithmName.GRID or (space_ok and not errors)
    if buildable and (why := search.sampler_problem(spec)) is not None:
        errors.append(FieldError("spec.algorithm.settings", why))
    if spec.early_stopping is not None and (why := search.pruner_problem(spec)) is not None:
        errors.append(FieldError("spec.earlyStopping.settings", why))
    return errors


def _budget_errors(spec: ExperimentSpec) -> list[FieldError]:
    rules = [
        ("spec.parallelTrials", spec.parallel_trials, 1),
        ("spec.maxTrials", spec.max_trials, 1),
        ("spec.maxFailedTrials", spec.max_failed_trials, 0),
    ]
    return [
        FieldError(path, f"must be >= {least}") for path, value, least in rules if value < least
    ]


# -- the trial template ----------------------------------------------------------------


def _template_errors(spec: ExperimentSpec, pod_rules: tuple[Validator, ...]) -> list[FieldError]:
    from cnai.tuning import search

    template = spec.trial_template.model_dump(mode="json", exclude_none=True)
    names = {p.name for p in spec.parameters}
    unknown = sorted(search.placeholders(template) - names)
    errors = [
        FieldError("spec.trialTemplate", f"${{trial.params.{name}}} names no parameter")
        for name in unknown
    ]
    values: dict[str, Any] = {name: "x" for name in unknown}
    values.update({p.name: _example(p) for p in spec.parameters})
    try:
        filled = TrainJobSpec.model_validate(search.substitute(template, values))
    except ValidationError as exc:
        return errors + [_in_template(e) for e in validation_causes(exc)]
    job = TrainJob(metadata=ObjectMeta(name="trial"), spec=filled)
    return errors + [_in_template(e) for e in trainjob_validator(pod_rules)(job, None)]


def _example(p: Parameter) -> Any:
    """A value the parameter can take, to stand in for its placeholders."""
    if p.type is ParameterType.CATEGORICAL:
        return p.values[0] if p.values else "x"
    low = p.min if p.min is not None and math.isfinite(p.min) else 1.0
    return int(low) if p.type is ParameterType.INT else low


def _in_template(err: FieldError) -> FieldError:
    field = err.field.removeprefix("spec.")
    return FieldError(f"spec.trialTemplate.{field}", err.message, err.reason)


# -- updates ---------------------------------------------------------------------------


def _immutability_errors(exp: Experiment, old: Experiment | None) -> list[FieldError]:
    if old is None:
        return []
    return [
        FieldError(f"spec.{info.alias or name}", "field is immutable")
        for name, info in ExperimentSpec.model_fields.items()
        if name not in MUTABLE and getattr(exp.spec, name) != getattr(old.spec, name)
    ]


def experiment_validator(pod_rules: tuple[Validator, ...] = ()) -> Validator:
    """The Experiment validator, checking the trial template with the TrainJob rules and
    ``pod_rules`` (the Pod kind's)."""

    def validate(exp: Experiment, old: Experiment | None) -> list[FieldError]:
        space = _space_errors(exp.spec.parameters)
        return [
            *space,
            *_objective_errors(exp.spec.objective),
            *_algorithm_errors(exp.spec, space_ok=not space),
            *_budget_errors(exp.spec),
            *_template_errors(exp.spec, pod_rules),
            *_immutability_errors(exp, old),
        ]

    return validate
