"""Experiments on the real platform: Optuna's algorithms over trials that are TrainJobs.

Every trial runs ``trainers/objective.py`` (a torch-free objective that logs its loss per
step through the SDK), as a one-node TrainJob asking for 0.5 cpu. Each test deletes its
experiment (the session platform's quota is shared); waits are bounded and generous.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import RunningPlatform, start_platform, unique, wait_until
from test_cli import cnai

from cnai import Client
from cnai.core.errors import Invalid, NotFound
from cnai.core.kinds import Namespace
from cnai.training.api import TrainJob
from cnai.tuning.api import Experiment, ExperimentPhase, Trial, TrialPhase

OBJECTIVE = str(Path(__file__).resolve().parent / "trainers" / "objective.py")
WAIT_S = 180.0

SPACE = [
    {"name": "x", "type": "float", "min": -4, "max": 6},
    {"name": "y", "type": "float", "min": -5, "max": 3},
    {"name": "shape", "type": "categorical", "values": ["good", "bad"]},
]
GRID_SPACE = [
    {"name": "x", "type": "float", "min": 1, "max": 3, "step": 1},
    {"name": "y", "type": "int", "min": -1, "max": 0},
    {"name": "shape", "type": "categorical", "values": ["good"]},
]


def args_for(space: list[dict[str, Any]]) -> list[str]:
    """``--NAME ${trial.params.NAME}`` for each parameter of the space."""
    return [a for p in space for a in (f"--{p['name']}", f"${{trial.params.{p['name']}}}")]


@pytest.fixture
def experiments(client: Client, namespace: str) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        with contextlib.suppress(NotFound):
            client.delete(Experiment, name, namespace)


def experiment(
    name: str, namespace: str, extra_args: tuple[str, ...] = (), **spec: Any
) -> dict[str, Any]:
    space = spec.get("parameters", SPACE)
    template = {
        "trainer": {
            "command": [sys.executable, OBJECTIVE, *args_for(space), *extra_args],
            "resourcesPerNode": {"requests": {"cpu": "500m"}},
            "terminationGracePeriodSeconds": 2,
        },
        "backoffLimit": 0,
    }
    body = {
        "parameters": SPACE,
        "objective": {"metric": "loss", "goal": "minimize"},
        "algorithm": {"name": "random", "seed": 1},
        "parallelTrials": 2,
        "maxTrials": 4,
        "trialTemplate": template,
        **spec,
    }
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": body,
    }


def _wait_end(client: Client, name: str, namespace: str) -> Experiment:
    wait_until(
        lambda: client.get(Experiment, name, namespace).status.phase.terminal,
        WAIT_S,
        f"experiment {name} to end",
    )
    return client.get(Experiment, name, namespace)


def _trials(client: Client, name: str, namespace: str) -> list[Trial]:
    listed = client.list(Trial, namespace, label_selector=f"cnai.io/experiment-name={name}")
    return sorted(listed.items, key=lambda t: t.spec.number)


@pytest.mark.parametrize(
    ("algorithm", "objectives", "space"),
    [
        pytest.param("random", 1, SPACE, id="random"),
        pytest.param("grid", 1, GRID_SPACE, id="grid"),
        pytest.param("tpe", 1, SPACE, id="tpe"),
        pytest.param("cmaes", 1, SPACE[:2], id="cmaes"),
        pytest.param("gp", 1, SPACE, id="gp"),
        pytest.param("nsga2", 2, SPACE, id="nsga2-two-objectives"),
    ],
)
def test_each_algorithm_runs_a_search_end_to_end(
    client: Client,
    namespace: str,
    experiments: list[str],
    algorithm: str,
    objectives: int,
    space: list[dict[str, Any]],
) -> None:
    name = unique(algorithm)
    experiments.append(name)
    objective: dict[str, Any] = {"metric": "loss", "goal": "minimize"}
    if objectives == 2:
        objective["additional"] = [{"metric": "score", "goal": "maximize"}]
    algo = {"name": algorithm, "seed": 3}
    budget = 10 if algorithm == "grid" else 4  # the grid has 6 points: it ends exhausted
    client.create(
        experiment(
            name,
            namespace,
            parameters=space,
            objective=objective,
            algorithm=algo,
            maxTrials=budget,
        )
    )

    exp = _wait_end(client, name, namespace)

    trials = _trials(client, name, namespace)
    assert exp.status.phase is ExperimentPhase.SUCCEEDED, exp.status.message
    assert exp.status.reason == "MaxTrialsReached"
    count = 6 if algorithm == "grid" else 4
    assert [t.spec.number for t in trials] == list(range(count))
    assert all(t.status.phase is TrialPhase.SUCCEEDED for t in trials)
    assert all(len(t.status.values) == objectives for t in trials)
    # An ended trial's TrainJob is deleted (retainTrialJobs is false); its run stays.
    wait_until(
        lambda: (
            not client.list(
                TrainJob, namespace, label_selector=f"cnai.io/experiment-name={name}"
            ).items
        ),
        WAIT_S,
        "the trials' TrainJobs deleted",
    )
    assert all(t.status.run_id for t in trials)
    # The trial's value is what its code logged: the objective at those parameters.
    for t in trials:
        p = t.spec.params
        expected = (p["x"] - 2) ** 2 + (p["y"] + 1) ** 2 + (p.get("shape", "good") == "bad")
        assert t.status.values[0] == pytest.approx(expected + 1 / 3)
    if objectives == 1:
        best = exp.status.best_trial
        assert best is not None
        assert best.values[0] == min(t.status.values[0] for t in trials)
    else:  # several objectives: no one best, a Pareto front
        front = exp.status.pareto_front
        assert front
        assert all(len(b.values) == 2 for b in front)
    if algorithm == "grid":
        points = [(t.spec.params["x"], t.spec.params["y"]) for t in trials]
        assert sorted(points) == [(x, y) for x in (1.0, 2.0, 3.0) for y in (-1, 0)]


@pytest.mark.parametrize(
    ("pruner", "settings"),
    [
        pytest.param("median", {"n_startup_trials": 2, "n_warmup_steps": 2}, id="median"),
        pytest.param("successive-halving", {"min_resource": 2}, id="successive-halving"),
        pytest.param("hyperband", {"min_resource": 2, "max_resource": 12}, id="hyperband"),
        pytest.param("wilcoxon", {"n_startup_steps": 3}, id="wilcoxon"),
    ],
)
def test_early_stopping_prunes_bad_trials_and_stops_their_jobs(
    client: Client,
    namespace: str,
    experiments: list[str],
    pruner: str,
    settings: dict[str, Any],
) -> None:
    """Half the grid is bad (x = 9). The pruner stops bad trials after a few of their
    12 steps, and their TrainJobs are deleted (quota freed); the best trial is good."""
    name = unique(pruner[:6])
    experiments.append(name)
    space = [  # x = 2 is good, x = 9 bad; the shapes are all good (only "bad" is not)
        {"name": "x", "type": "float", "min": 2, "max": 9, "step": 7},
        {"name": "shape", "type": "categorical", "values": ["a", "b", "c", "d"]},
    ]
    body = experiment(
        name,
        namespace,
        ("--steps", "12", "--step-seconds", "0.15"),
        parameters=space,
        algorithm={"name": "grid", "seed": 1},
        maxTrials=8,
        parallelTrials=2,
        earlyStopping={"name": pruner, "settings": settings},
    )
    client.create(body)

    exp = _wait_end(client, name, namespace)

    trials = _trials(client, name, namespace)
    pruned = [t for t in trials if t.status.phase is TrialPhase.PRUNED]
    assert exp.status.phase is ExperimentPhase.SUCCEEDED, exp.status.message
    assert any(t.spec.params["x"] == 9 for t in pruned), [
        (t.spec.params, t.status.phase) for t in trials
    ]
    for t in pruned:
        with pytest.raises(NotFound):
            client.get(TrainJob, t.status.train_job, namespace)
    # Stopped early (a loaded machine may judge a trial only at its last step, though).
    assert any(max(int(s) for s in t.status.intermediate) < 12 for t in pruned)
    assert exp.status.pruned == len(pruned)
    best = exp.status.best_trial
    assert best is not None
    assert best.params["x"] == 2


def test_too_many_failed_trials_fail_the_experiment_with_the_reason(
    client: Client, namespace: str, experiments: list[str]
) -> None:
    name = unique("failing")
    experiments.append(name)
    client.create(experiment(name, namespace, ("--fail",), maxFailedTrials=1))

    exp = _wait_end(client, name, namespace)

    assert exp.status.phase is ExperimentPhase.FAILED
    assert exp.status.reason == "MaxFailedTrialsReached"
    assert "more than maxFailedTrials (1)" in exp.status.message
    assert "failed" in exp.status.message


def test_the_target_ends_the_search_early(
    client: Client, namespace: str, experiments: list[str]
) -> None:
    name = unique("target")
    experiments.append(name)
    objective = {"metric": "loss", "goal": "minimize", "target": 1000.0}  # any point reaches it
    client.create(experiment(name, namespace, objective=objective, maxTrials=20))

    exp = _wait_end(client, name, namespace)

    assert exp.status.phase is ExperimentPhase.SUCCEEDED
    assert exp.status.reason == "GoalReached"
    assert exp.status.trials < 20


def test_a_bad_experiment_is_refused_naming_the_fields(client: Client, namespace: str) -> None:
    body = experiment(unique("bad"), namespace, parameters=[])
    body["spec"]["algorithm"] = {"name": "annealing"}
    with pytest.raises(Invalid) as refused:
        client.create(body)
    assert "spec.algorithm.name" in {c.field for c in refused.value.causes}

    body["spec"]["algorithm"] = {"name": "tpe"}
    with pytest.raises(Invalid) as refused:
        client.create(body)
    assert "spec.parameters" in {c.field for c in refused.value.causes}

    body["spec"]["parameters"] = [{"name": "x", "type": "float", "min": 3, "max": 1}]
    with pytest.raises(Invalid) as refused:
        client.create(body)
    fields = {c.field for c in refused.value.causes}
    assert "spec.parameters[0].max" in fields


def test_a_search_survives_a_platform_crash_with_no_trial_lost_or_duplicated(
    tmp_path: Path,
) -> None:
    """SIGKILL the platform mid-search, start it again: the search goes on from the
    stored trials and ends with exactly maxTrials trials, numbered once each."""
    home = tmp_path / "home"
    running = start_platform(home)
    try:
        with running.client() as c:
            c.create(Namespace.new("tune"))
            body = experiment("crash", "tune", ("--steps", "4", "--step-seconds", "0.2"),
                              algorithm={"name": "tpe", "seed": 7}, maxTrials=8)  # fmt: skip
            c.create(body)
            wait_until(
                lambda: c.get(Experiment, "crash", "tune").status.succeeded >= 2,
                WAIT_S,
                "two trials done",
            )
        running.proc.send_signal(signal.SIGKILL)
        running.proc.wait(timeout=30)
        running = start_platform(home, port=running.port)
        with running.client() as c:
            exp = _wait_end(c, "crash", "tune")
            trials = _trials(c, "crash", "tune")
    finally:
        running.stop()
    assert exp.status.phase is ExperimentPhase.SUCCEEDED, exp.status.message
    assert [t.spec.number for t in trials] == list(range(8))
    assert [t.metadata.name for t in trials] == [f"crash-{n}" for n in range(8)]
    assert all(t.status.phase.terminal for t in trials)
    assert exp.status.succeeded + exp.status.failed + exp.status.pruned == 8


def test_describe_lists_the_trials_and_the_best_model_registers_in_one_command(
    platform: RunningPlatform, client: Client, namespace: str, experiments: list[str]
) -> None:
    name = unique("cli")
    experiments.append(name)
    client.create(experiment(name, namespace, maxTrials=3))
    exp = _wait_end(client, name, namespace)
    best = exp.status.best_trial
    assert best is not None

    got = cnai(platform, "get", "experiments", "-n", namespace)
    assert got.code == 0, got.err
    assert got.lines[0].split()[:4] == ["NAME", "STATUS", "PROGRESS", "RUNNING"]
    assert got.lines[1].split()[:4] == [name, "Succeeded", "3/3", "0"]
    described = cnai(platform, "describe", "experiment", name, "-n", namespace)
    assert described.code == 0, described.err
    rows = described.out[described.out.index("\nTrials:") + 1 :].splitlines()
    assert rows[1].split()[:2] == ["NAME", "STATUS"]
    assert {r.split()[0] for r in rows[2:5]} == {f"{name}-{n}" for n in range(3)}
    assert any(r.split()[:2] == [best.name, "*"] for r in rows[2:5])

    registered = cnai(
        platform, "experiments", "register-best", name, "-n", namespace,
        "--model", "tuned", "--path", "model/model.pt", "--alias", "champion",
    )  # fmt: skip
    assert registered.code == 0, registered.err
    assert f"from trial {best.name}" in registered.out
    version = client.get("modelversion", "tuned-v1", namespace)
    assert version.spec["runId"] == best.run_id
    assert version.spec["source"].endswith(f"/{best.run_id}/model/model.pt")
    assert version.spec["metrics"] == {"loss": best.values[0]}
    assert client.get("model", "tuned", namespace).spec["aliases"] == {"champion": 1}
