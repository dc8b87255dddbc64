"""The tuning kinds: ``Experiment`` (a hyperparameter search) and ``Trial`` (one point).

Shaped after Katib's Experiment in cnai's conventions, with Optuna's algorithms: the
search space (``parameters``), what to optimize (``objective``), how to pick the next
point (``algorithm``), when to stop a trial early (``earlyStopping``), and the TrainJob
every trial runs (``trialTemplate``, where ``${trial.params.NAME}`` is substituted). Each
trial is a real TrainJob, so trials go through queues, quota and gang admission.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field

from cnai.core.meta import Condition, Resource, WireModel
from cnai.training.api import TrainJobSpec

EXPERIMENT_LABEL = "cnai.io/experiment-name"
TRIAL_LABEL = "cnai.io/trial-name"


class ParameterType(StrEnum):
    FLOAT = "float"
    INT = "int"
    CATEGORICAL = "categorical"


class Parameter(WireModel):
    """One dimension of the search space."""

    name: str = Field(description="Name, as used in ${trial.params.NAME}.")
    type: ParameterType = Field(description="float, int or categorical.")
    min: float | None = Field(default=None, description="Lower bound (float, int).")
    max: float | None = Field(default=None, description="Upper bound, inclusive (float, int).")
    step: float | None = Field(default=None, description="Spacing of the values (float, int).")
    log: bool = Field(default=False, description="Sample on a log scale (float, int).")
    values: list[str | int | float | bool] = Field(
        default_factory=list, description="The choices (categorical)."
    )


class Goal(StrEnum):
    MINIMIZE = "minimize"
    MAXIMIZE = "maximize"


class Metric(WireModel):
    """A metric the trials log, and which way is better."""

    metric: str = Field(description="Name of the metric the trial logs to its run.")
    goal: Goal = Field(description="minimize or maximize.")


class Objective(Metric):
    """What the search optimizes: one metric, or several (a Pareto front)."""

    target: float | None = Field(
        default=None, description="Stop the search once a trial reaches this value."
    )
    additional: list[Metric] = Field(
        default_factory=list, description="More objectives, for multi-objective search."
    )

    @property
    def metrics(self) -> list[Metric]:
        return [Metric(metric=self.metric, goal=self.goal), *self.additional]


class AlgorithmName(StrEnum):
    RANDOM = "random"
    GRID = "grid"
    TPE = "tpe"
    CMAES = "cmaes"
    GP = "gp"
    NSGA2 = "nsga2"


class Algorithm(WireModel):
    """How the next point is chosen: one of Optuna's samplers."""

    name: AlgorithmName = Field(default=AlgorithmName.TPE, description="The sampler.")
    seed: int | None = Field(default=None, description="Seed, for a reproducible search.")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="The sampler's own settings, e.g. n_startup_trials for tpe.",
    )


class EarlyStoppingName(StrEnum):
    MEDIAN = "median"
    SUCCESSIVE_HALVING = "successive-halving"
    HYPERBAND = "hyperband"
    WILCOXON = "wilcoxon"


class EarlyStopping(WireModel):
    """When a running trial is stopped early: one of Optuna's pruners."""

    name: EarlyStoppingName = Field(description="The pruner.")
    settings: dict[str, Any] = Field(
        default_factory=dict,
        description="The pruner's own settings, e.g. min_resource for hyperband.",
    )


class ExperimentSpec(WireModel):
    """The search: space, objective, algorithm, budget, and what each trial runs."""

    parameters: list[Parameter] = Field(description="The search space (at least one).")
    objective: Objective = Field(description="What to optimize.")
    algorithm: Algorithm = Field(default_factory=Algorithm, description="The sampler.")
    early_stopping: EarlyStopping | None = Field(default=None, description="The pruner.")
    parallel_trials: int = Field(default=1, description="Trials running at once (>= 1).")
    max_trials: int = Field(default=10, description="Trials in all (>= 1).")
    max_failed_trials: int = Field(
        default=3, description="Failed trials tolerated; one more fails the experiment."
    )
    trial_template: TrainJobSpec = Field(
        description="The TrainJob each trial runs; ${trial.params.NAME} is substituted."
    )
    retain_trial_jobs: bool = Field(
        default=False,
        description="Keep a trial's TrainJob (and its pods and logs) once the trial ended; by "
        "default it is deleted, as Katib does, and the trial keeps its values and its run.",
    )


class ExperimentPhase(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self is not ExperimentPhase.RUNNING


class BestTrial(WireModel):
    """A trial on the best list: its name, parameters and objective values."""

    name: str = Field(description="The Trial.")
    params: dict[str, Any] = Field(default_factory=dict, description="Its parameters.")
    values: list[float] = Field(default_factory=list, description="Its objective values.")
    run_id: str = Field(default="", description="Its tracking run.")


class ExperimentStatus(WireModel):
    """Progress, and the best found so far."""

    phase: ExperimentPhase = Field(default=ExperimentPhase.RUNNING, description="Lifecycle.")
    conditions: list[Condition] = Field(default_factory=list, description="Succeeded, Failed.")
    trials: int = Field(default=0, description="Trials created.")
    running: int = Field(default=0, description="Trials running.")
    succeeded: int = Field(default=0, description="Trials that finished with a value.")
    pruned: int = Field(default=0, description="Trials stopped early.")
    failed: int = Field(default=0, description="Trials that failed.")
    progress: str = Field(default="", description="Finished over max trials, e.g. 7/20.")
    best_trial: BestTrial | None = Field(default=None, description="The best trial.")
    pareto_front: list[BestTrial] = Field(
        default_factory=list, description="Multi-objective: the trials no other beats."
    )
    start_time: datetime | None = Field(default=None, description="When it started.")
    completion_time: datetime | None = Field(default=None, description="When it ended.")
    reason: str = Field(default="", description="Why it ended.")
    message: str = Field(default="", description="The same, in words.")


class Experiment(Resource):
    """A hyperparameter search whose trials are TrainJobs."""

    KIND: ClassVar[str] = "Experiment"
    PLURAL: ClassVar[str] = "experiments"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("exp",)

    spec: ExperimentSpec = Field(description="The search.")
    status: ExperimentStatus = Field(default_factory=ExperimentStatus, description="Progress.")


class TrialPhase(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    PRUNED = "Pruned"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self is not TrialPhase.RUNNING


class TrialSpec(WireModel):
    """One point of the search (immutable)."""

    experiment: str = Field(description="The Experiment.")
    number: int = Field(description="Its number in the search, from 0.")
    params: dict[str, Any] = Field(description="The parameters, by name.")


class TrialStatus(WireModel):
    """What became of the trial."""

    phase: TrialPhase = Field(default=TrialPhase.RUNNING, description="Lifecycle.")
    values: list[float] = Field(default_factory=list, description="Objective values at the end.")
    intermediate: dict[str, float] = Field(
        default_factory=dict, description="The objective by step (for early stopping)."
    )
    train_job: str = Field(default="", description="The TrainJob running it.")
    run_id: str = Field(default="", description="Its tracking run.")
    start_time: datetime | None = Field(default=None, description="When it was created.")
    completion_time: datetime | None = Field(default=None, description="When it ended.")
    reason: str = Field(default="", description="Why it ended so.")
    message: str = Field(default="", description="The same, in words.")


class Trial(Resource):
    """One point of an Experiment, run as a TrainJob."""

    KIND: ClassVar[str] = "Trial"
    PLURAL: ClassVar[str] = "trials"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()

    spec: TrialSpec = Field(description="The point.")
    status: TrialStatus = Field(default_factory=TrialStatus, description="The outcome.")
