"""Experiment admission through the real chain and a real store: every rejection names its
field path, a valid search is admitted, and only the budget changes once it exists."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Self

import pytest

from cnai.batch.admission import pod_validators
from cnai.core.clock import FakeClock
from cnai.core.errors import Invalid
from cnai.core.kernel import register_kernel
from cnai.core.kinds import Namespace
from cnai.core.registry import KindInfo, Registry
from cnai.core.resources import ResourceService
from cnai.core.store.sqlite import SQLiteStore
from cnai.tuning.admission import experiment_validator
from cnai.tuning.api import Experiment
from cnai.version import GROUP_VERSION

pytestmark = pytest.mark.anyio


class ExperimentBuilder:
    """An Experiment as wire data, valid until told otherwise:
    ``make_experiment().param("n", "int", min=1, max=4).algorithm("grid")``."""

    def __init__(self, name: str = "exp") -> None:
        self._obj: dict[str, Any] = {
            "apiVersion": GROUP_VERSION,
            "kind": "Experiment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "parameters": [
                    {"name": "lr", "type": "float", "min": 1e-4, "max": 0.1, "log": True}
                ],
                "objective": {"metric": "loss", "goal": "minimize"},
                "trialTemplate": {
                    "trainer": {"command": ["python", "train.py", "--lr=${trial.params.lr}"]}
                },
            },
        }

    @property
    def _spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self._obj["spec"]
        return spec

    def spec(self, **fields: Any) -> Self:
        self._spec.update(fields)
        return self

    def params(self, *params: dict[str, Any]) -> Self:
        """Replace the search space."""
        return self.spec(parameters=list(params))

    def param(self, name: str, type: str, **fields: Any) -> Self:
        self._spec["parameters"].append({"name": name, "type": type, **fields})
        return self

    def objective(self, **fields: Any) -> Self:
        self._spec["objective"].update(fields)
        return self

    def also(self, metric: str, goal: str = "minimize") -> Self:
        self._spec["objective"].setdefault("additional", []).append(
            {"metric": metric, "goal": goal}
        )
        return self

    def algorithm(self, name: str, **settings: Any) -> Self:
        return self.spec(algorithm={"name": name, "settings": settings})

    def early_stopping(self, name: str, **settings: Any) -> Self:
        return self.spec(earlyStopping={"name": name, "settings": settings})

    def trainer(self, **fields: Any) -> Self:
        self._spec["trialTemplate"]["trainer"].update(fields)
        return self

    def build(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)


def make_experiment(name: str = "exp") -> ExperimentBuilder:
    return ExperimentBuilder(name)


@pytest.fixture
def registry() -> Registry:
    r = Registry()
    register_kernel(r)  # with the Pod kind, whose rules the trial template must pass
    r.register(KindInfo(Experiment, validators=(experiment_validator(pod_validators(r)),)))
    return r


@pytest.fixture
async def service(registry: Registry, tmp_path: Path) -> AsyncIterator[ResourceService]:
    clock = FakeClock()
    store = SQLiteStore(tmp_path / "state.db", clock=clock.now)
    svc = ResourceService(registry, store)
    await svc.create("namespaces", Namespace.new("default").to_dict())
    yield svc
    await store.close()


async def rejected(service: ResourceService, body: dict[str, Any]) -> list[str]:
    """The causes of the rejection, as ``field: message``."""
    with pytest.raises(Invalid) as caught:
        await service.create("experiments", body)
    return [str(c) for c in caught.value.causes]


FLOAT = {"name": "x", "type": "float", "min": 0, "max": 1}


@pytest.mark.parametrize(
    ("experiment", "cause"),
    [
        # -- the search space
        pytest.param(
            make_experiment().params(),
            "spec.parameters: needs at least one parameter",
            id="empty-space",
        ),
        pytest.param(
            make_experiment().param("lr", "int", min=1, max=2),
            "spec.parameters[1].name: names a parameter twice",
            id="duplicate-parameter",
        ),
        pytest.param(
            make_experiment().params({**FLOAT, "name": "1x"}),
            "spec.parameters[0].name: must match [A-Za-z_][A-Za-z0-9_.-]*",
            id="name-starts-with-a-digit",
        ),
        pytest.param(
            make_experiment().params({**FLOAT, "name": "a b"}),
            "spec.parameters[0].name: must match",
            id="name-with-a-space",
        ),
        pytest.param(
            make_experiment().params({"name": "x", "type": "float", "max": 1}),
            "spec.parameters[0].min: is required for float and int parameters",
            id="float-without-min",
        ),
        pytest.param(
            make_experiment().params({"name": "x", "type": "int", "min": 1}),
            "spec.parameters[0].max: is required for float and int parameters",
            id="int-without-max",
        ),
        pytest.param(
            make_experiment().params({**FLOAT, "min": 2}),
            "spec.parameters[0].max: must be >= min (2)",
            id="min-above-max",
        ),
        pytest.param(
            make_experiment().params({**FLOAT, "step": 0}),
            "spec.parameters[0].step: must be > 0",
            id="zero-step",
        ),
        pytest.param(
            make_experiment().params({"name": "n", "type": "int", "min": 1, "max": 9, "step": -2}),
            "spec.parameters[0].step: must be > 0",
            id="negative-int-step",
        ),
        pytest.param(
            make_experiment().params({**FLOAT, "log": True}),
            "spec.parameters[0].min: must be > 0 on a log scale",
            id="log-from-zero",
        ),
        pytest.param(
            make_experiment().params({**FLOAT, "min": 0.1, "log": True, "step": 0.1}),
            "spec.parameters[0].step: cannot be combined with log",
            id="float-log-with-step",
        ),
        pytest.param(
            make_experiment().params(
                {"name": "n", "type": "int", "min": 1, "max": 64, "log": True, "step": 2}
            ),
            "spec.parameters[0].step: cannot be combined with log (but 1)",
            id="int-log-with-step",
        ),
        pytest.param(
            make_experiment().params({"name": "n", "type": "int", "min": 0.5, "max": 4}),
            "spec.parameters[0].min: must be a whole number",
            id="int-fractional-min",
        ),
        pytest.param(
            make_experiment().params({"name": "n", "type": "int", "min": 0, "max": 4, "step": 1.5}),
            "spec.parameters[0].step: must be a whole number",
            id="int-fractional-step",
        ),
        pytest.param(
            make_experiment().params({**FLOAT, "max": "inf"}),
            "spec.parameters[0].max: must be a finite number",
            id="infinite-bound",
        ),
        pytest.param(
            make_experiment().params({**FLOAT, "values": [0.1, 0.2]}),
            "spec.parameters[0].values: only for categorical parameters",
            id="float-with-values",
        ),
        pytest.param(
            make_experiment().params({"name": "act", "type": "categorical"}),
            "spec.parameters[0].values: needs at least one value",
            id="categorical-without-values",
        ),
        pytest.param(
            make_experiment().params(
                {"name": "act", "type": "categorical", "values": ["a"], "max": 1}
            ),
            "spec.parameters[0].max: only for float and int parameters",
            id="categorical-with-a-bound",
        ),
        pytest.param(
            make_experiment().params(
                {"name": "act", "type": "categorical", "values": ["a"], "log": True}
            ),
            "spec.parameters[0].log: only for float and int parameters",
            id="categorical-on-a-log-scale",
        ),
        pytest.param(
            make_experiment().params(
                {"name": "flag", "type": "categorical", "values": [1, "1", True]}
            ),
            "spec.parameters[0].values[2]: equals an earlier value",
            id="categorical-true-equals-1",
        ),
        pytest.param(
            make_experiment().params({"name": "x", "type": "range", "min": 0, "max": 1}),
            "spec.parameters[0].type: Input should be 'float', 'int' or 'categorical'",
            id="unknown-parameter-type",
        ),
        # -- the objective
        pytest.param(
            make_experiment().objective(metric=""),
            "spec.objective.metric: is required",
            id="no-metric",
        ),
        pytest.param(
            make_experiment().objective(metric="loss!"),
            "spec.objective.metric: may hold only letters, digits, spaces and _ - . /",
            id="metric-with-a-bang",
        ),
        pytest.param(
            make_experiment().objective(metric="a" * 251),
            "spec.objective.metric: must be at most 250 characters",
            id="metric-too-long",
        ),
        pytest.param(
            make_experiment().objective(metric="/loss"),
            "spec.objective.metric: must not start with / or contain a .. segment",
            id="metric-like-an-absolute-path",
        ),
        pytest.param(
            make_experiment().also("loss"),
            "spec.objective.additional[0].metric: names a metric already in the objective",
            id="objective-metric-twice",
        ),
        pytest.param(
            make_experiment().also("latency").also("latency"),
            "spec.objective.additional[1].metric: names a metric already in the objective",
            id="additional-metric-twice",
        ),
        pytest.param(
            make_experiment().objective(target=0.1).also("latency"),
            "spec.objective.target: only for a single objective",
            id="target-with-several-objectives",
        ),
        pytest.param(
            make_experiment().objective(goal="lowest"),
            "spec.objective.goal: Input should be 'minimize' or 'maximize'",
            id="unknown-goal",
        ),
        # -- algorithm and early stopping
        pytest.param(
            make_experiment().algorithm("bayes"),
            "spec.algorithm.name: Input should be 'random', 'grid', 'tpe', 'cmaes', 'gp' or "
            "'nsga2'",
            id="unknown-algorithm",
        ),
        pytest.param(
            make_experiment().early_stopping("asha"),
            "spec.earlyStopping.name: Input should be 'median', 'successive-halving', "
            "'hyperband' or 'wilcoxon'",
            id="unknown-early-stopping",
        ),
        pytest.param(
            make_experiment().algorithm("cmaes").also("latency"),
            "spec.algorithm.name: cmaes optimizes a single objective; for several use "
            "random, grid, tpe, nsga2, gp",
            id="cmaes-with-several-objectives",
        ),
        pytest.param(
            make_experiment().also("latency").early_stopping("median"),
            "spec.earlyStopping: early stopping needs a single objective",
            id="early-stopping-with-several-objectives",
        ),
        pytest.param(
            make_experiment().algorithm("grid"),
            "spec.parameters[0].step: grid search needs a step for float parameters",
            id="grid-float-without-step",
        ),
        pytest.param(
            make_experiment()
            .algorithm("grid")
            .params(
                {"name": "a", "type": "int", "min": 0, "max": 999},
                {"name": "b", "type": "int", "min": 0, "max": 999},
            ),
            "spec.parameters: the grid has 1000000 points; at most 100000",
            id="grid-too-big",
        ),
        pytest.param(
            make_experiment().algorithm("tpe", n_startup=3),
            "spec.algorithm.settings: unknown setting 'n_startup' of TPESampler (known: ",
            id="unknown-setting",
        ),
        pytest.param(
            make_experiment().algorithm("tpe", gamma=0.2),
            "spec.algorithm.settings: setting 'gamma' takes a Python object",
            id="setting-taking-a-callable",
        ),
        pytest.param(
            make_experiment().algorithm("tpe", n_startup_trials="ten"),
            "spec.algorithm.settings: setting 'n_startup_trials' must be int",
            id="setting-of-the-wrong-type",
        ),
        pytest.param(
            make_experiment().algorithm("random", seed=3),
            "spec.algorithm.settings: setting 'seed': set spec.algorithm.seed instead",
            id="seed-as-a-setting",
        ),
        pytest.param(
            make_experiment()
            .algorithm("grid", search_space={})
            .params({"name": "n", "type": "int", "min": 0, "max": 3}),
            "spec.algorithm.settings: setting 'search_space': the grid is spec.parameters",
            id="grid-search-space-as-a-setting",
        ),
        pytest.param(
            make_experiment().algorithm("nsga2", crossover_prob=2.0),
            "spec.algorithm.settings: NSGAIISampler: ",
            id="setting-out-of-range",
        ),
        pytest.param(
            make_experiment().algorithm("tpe", consider_prior=False),
            "spec.algorithm.settings: `consider_prior` has been deprecated",
            id="deprecated-setting",
        ),
        pytest.param(
            make_experiment().early_stopping("successive-halving", reduction_factor=1),
            "spec.earlyStopping.settings: SuccessiveHalvingPruner: The value of "
            "`reduction_factor` is 1",
            id="pruner-setting-out-of-range",
        ),
        pytest.param(
            make_experiment().early_stopping("hyperband", min_resource=0),
            "spec.earlyStopping.settings: HyperbandPruner fails with these settings: division "
            "by zero",
            id="pruner-setting-failing-only-when-used",
        ),
        pytest.param(
            make_experiment().early_stopping("hyperband", min_resource=10, max_resource=5),
            "spec.earlyStopping.settings: max_resource must be >= min_resource (10)",
            id="hyperband-with-no-bracket",
        ),
        pytest.param(
            make_experiment().early_stopping("median", patience=3),
            "spec.earlyStopping.settings: unknown setting 'patience' of MedianPruner",
            id="pruner-unknown-setting",
        ),
        # -- budget
        pytest.param(
            make_experiment().spec(parallelTrials=0),
            "spec.parallelTrials: must be >= 1",
            id="no-parallel-trials",
        ),
        pytest.param(
            make_experiment().spec(maxTrials=0), "spec.maxTrials: must be >= 1", id="no-trials"
        ),
        pytest.param(
            make_experiment().spec(maxFailedTrials=-1),
            "spec.maxFailedTrials: must be >= 0",
            id="negative-failures",
        ),
        # -- the trial template
        pytest.param(
            make_experiment().trainer(args=["--layers=${trial.params.layers}"]),
            "spec.trialTemplate: ${trial.params.layers} names no parameter",
            id="placeholder-naming-no-parameter",
        ),
        pytest.param(
            make_experiment().trainer(command=[]),
            "spec.trialTemplate.trainer.command: is required",
            id="template-without-command",
        ),
        pytest.param(
            make_experiment().trainer(numNodes=0),
            "spec.trialTemplate.trainer.numNodes: must be >= 1",
            id="template-with-no-nodes",
        ),
        pytest.param(
            make_experiment().trainer(env=[{"name": "1BAD", "value": "x"}]),
            "spec.trialTemplate.trainer.env[0].name:",
            id="template-env-name-not-an-identifier",
        ),
        pytest.param(
            make_experiment().trainer(env=[{"name": "${trial.params.lr}", "value": "x"}]),
            "spec.trialTemplate.trainer.env[0].name:",
            id="template-env-name-from-a-parameter-is-no-identifier",
        ),
        pytest.param(
            make_experiment().trainer(numNode=2),
            "spec.trialTemplate.trainer.numNode: unknown field",
            id="template-misspelt-field",
        ),
        pytest.param(
            make_experiment().spec(budget=3), "spec.budget: unknown field", id="misspelt-field"
        ),
    ],
)
async def test_invalid_experiments_are_rejected_naming_the_field(
    service: ResourceService, experiment: ExperimentBuilder, cause: str
) -> None:
    causes = await rejected(service, experiment.build())
    assert any(c.startswith(cause) for c in causes), causes


async def test_a_rejection_lists_every_broken_rule(service: ResourceService) -> None:
    body = (
        make_experiment()
        .params({**FLOAT, "name": "lr", "min": 2}, {**FLOAT, "name": "lr"})
        .objective(metric="")
        .spec(maxTrials=0)
        .build()
    )
    fields = [c.split(":")[0] for c in await rejected(service, body)]
    assert fields == [
        "spec.parameters[0].max",
        "spec.parameters[1].name",
        "spec.objective.metric",
        "spec.maxTrials",
    ]


@pytest.mark.parametrize(
    "experiment",
    [
        pytest.param(make_experiment(), id="defaults"),
        pytest.param(make_experiment().algorithm("random"), id="random"),
        pytest.param(
            make_experiment()
            .algorithm("grid")
            .params(
                {"name": "n", "type": "int", "min": 1, "max": 64, "log": True},
                {"name": "lr", "type": "float", "min": 0.1, "max": 0.5, "step": 0.1},
                {"name": "act", "type": "categorical", "values": ["relu", "tanh"]},
            )
            .trainer(args=["${trial.params.n}", "${trial.params.act}", "${trial.params.lr}"]),
            id="grid",
        ),
        pytest.param(
            make_experiment().algorithm("tpe", n_startup_trials=5, multivariate=True),
            id="tpe-with-settings",
        ),
        pytest.param(
            make_experiment().algorithm("cmaes", popsize=8, n_startup_trials=2),
            id="cmaes-with-settings",
        ),
        pytest.param(make_experiment().algorithm("gp", n_startup_trials=4), id="gp"),
        pytest.param(
            make_experiment()
            .algorithm("nsga2", population_size=10)
            .objective(goal="maximize")
            .also("latency")
            .also("memory/peak mb", "minimize"),
            id="nsga2-three-objectives",
        ),
        pytest.param(make_experiment().early_stopping("median", n_startup_trials=3), id="median"),
        pytest.param(
            make_experiment().early_stopping("successive-halving", min_resource=2),
            id="successive-halving",
        ),
        pytest.param(
            make_experiment().early_stopping("hyperband", max_resource=30), id="hyperband"
        ),
        pytest.param(make_experiment().early_stopping("wilcoxon", p_threshold=0.05), id="wilcoxon"),
        pytest.param(
            make_experiment().objective(target=0.01).spec(parallelTrials=20, maxTrials=4),
            id="more-parallel-than-trials-and-a-target",
        ),
        pytest.param(
            make_experiment()
            .param("procs", "int", min=1, max=4)
            .trainer(
                env=[
                    {"name": "LR", "value": "${trial.params.lr}"},
                    {"name": "PROCS_${trial.params.procs}", "value": "1"},
                ],
                workingDir="/runs/${trial.params.procs}",
            ),
            id="placeholders-in-env-and-working-dir",
        ),
    ],
)
async def test_a_valid_experiment_is_admitted(
    service: ResourceService, experiment: ExperimentBuilder
) -> None:
    created = await service.create("experiments", experiment.build())
    names = [p["name"] for p in experiment.build()["spec"]["parameters"]]
    assert [p["name"] for p in created["spec"]["parameters"]] == names


async def test_the_defaults_are_filled_in(service: ResourceService) -> None:
    spec = (await service.create("experiments", make_experiment().build()))["spec"]
    assert spec["algorithm"] == {"name": "tpe", "settings": {}}
    assert (spec["parallelTrials"], spec["maxTrials"], spec["maxFailedTrials"]) == (1, 10, 3)


@pytest.mark.parametrize(
    ("change", "cause"),
    [
        pytest.param(
            lambda s: s["parameters"][0].update(max=0.2),
            "spec.parameters: field is immutable",
            id="space",
        ),
        pytest.param(
            lambda s: s["objective"].update(goal="maximize"),
            "spec.objective: field is immutable",
            id="objective",
        ),
        pytest.param(
            lambda s: s.update(algorithm={"name": "tpe", "seed": 4}),
            "spec.algorithm: field is immutable",
            id="algorithm-seed",
        ),
        pytest.param(
            lambda s: s.update(earlyStopping={"name": "median"}),
            "spec.earlyStopping: field is immutable",
            id="early-stopping-added",
        ),
        pytest.param(
            lambda s: s["trialTemplate"]["trainer"].update(args=["--fast"]),
            "spec.trialTemplate: field is immutable",
            id="trial-template",
        ),
    ],
)
async def test_the_search_cannot_change_once_made(
    service: ResourceService, change: Any, cause: str
) -> None:
    created = await service.create("experiments", make_experiment().build())
    change(created["spec"])
    with pytest.raises(Invalid) as caught:
        await service.update("experiments", created, "default", "exp")
    assert [str(c) for c in caught.value.causes] == [cause]


async def test_the_budget_may_change(service: ResourceService) -> None:
    created = await service.create("experiments", make_experiment().build())
    created["spec"].update(maxTrials=50, parallelTrials=4, maxFailedTrials=10)
    updated = await service.update("experiments", created, "default", "exp")
    spec = updated["spec"]
    assert (spec["maxTrials"], spec["parallelTrials"], spec["maxFailedTrials"]) == (50, 4, 10)
