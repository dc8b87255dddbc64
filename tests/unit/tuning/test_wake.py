"""The Experiment controller wakes on metrics logged to the runs it judges."""

from __future__ import annotations

from typing import Any

from cnai.core.clock import FakeClock
from cnai.core.controllers import Request
from cnai.core.meta import ObjectMeta
from cnai.tuning.api import Experiment, Trial, TrialPhase, TrialSpec, TrialStatus
from cnai.tuning.controller import ExperimentReconciler

from .test_search import make_spec


def experiment(early_stopping: bool) -> Experiment:
    spec = make_spec("random").floats("x")
    if early_stopping:
        spec = spec.pruner("median")
    return Experiment(metadata=ObjectMeta(name="exp", namespace="team"), spec=spec.build())


def trial(run_id: str, phase: TrialPhase = TrialPhase.RUNNING) -> Trial:
    return Trial(
        metadata=ObjectMeta(name="exp-0", namespace="team"),
        spec=TrialSpec(experiment="exp", number=0, params={"x": 0.0}),
        status=TrialStatus(phase=phase, run_id=run_id),
    )


def reconciler() -> ExperimentReconciler:
    none: Any = None  # the wake-up bookkeeping touches neither the store nor events
    return ExperimentReconciler(none, FakeClock(), none)


def test_a_metric_logged_to_a_judged_trials_run_wakes_its_experiment() -> None:
    r = reconciler()
    woken: list[Request] = []
    tell = r.metrics_logged(woken.append)
    r._follow_run(experiment(early_stopping=True), trial("run-1"))
    tell("team", "run-1", frozenset({"loss"}))
    tell("team", "run-2", frozenset({"loss"}))  # not a trial's run
    tell("other", "run-1", frozenset({"loss"}))  # another namespace's run of that id
    assert woken == [Request("team", "exp")]
    # Once the trial ended, its run no longer wakes the experiment.
    r._follow_run(experiment(early_stopping=True), trial("run-1", TrialPhase.SUCCEEDED))
    tell("team", "run-1", frozenset({"loss"}))
    assert woken == [Request("team", "exp")]


def test_without_early_stopping_a_running_trials_metrics_wake_nothing() -> None:
    r = reconciler()
    woken: list[Request] = []
    tell = r.metrics_logged(woken.append)
    r._follow_run(experiment(early_stopping=False), trial("run-1"))
    tell("team", "run-1", frozenset({"loss"}))
    assert woken == []


def test_a_deleted_experiment_forgets_its_runs() -> None:
    r = reconciler()
    woken: list[Request] = []
    tell = r.metrics_logged(woken.append)
    r._follow_run(experiment(early_stopping=True), trial("run-1"))
    r._unfollow(Request("team", "exp"))
    tell("team", "run-1", frozenset({"loss"}))
    assert woken == []
