"""The pure decision: given a job, its pods and the time, what to create, stop and report."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cnai.batch.api import ConditionType, Job, JobPhase, JobStatus
from cnai.batch.decide import decide, set_condition
from cnai.core.pods import Pod, PodPhase

from .builders import T0, JobBuilder, make_job, make_pod

P, R, S, F = PodPhase.PENDING, PodPhase.RUNNING, PodPhase.SUCCEEDED, PodPhase.FAILED


def started(builder: JobBuilder) -> Job:
    job = builder.typed()
    job.status.start_time = T0
    return job


@pytest.mark.parametrize(
    ("job", "pods", "create", "delete", "phase", "active"),
    [
        pytest.param(
            make_job().parallelism(3).completions(5).typed(),
            [],
            [0, 1, 2],
            [],
            JobPhase.PENDING,
            3,
            id="fresh-job-starts-parallelism-pods",
        ),
        pytest.param(
            make_job().parallelism(4).completions(2).typed(),
            [],
            [0, 1],
            [],
            JobPhase.PENDING,
            2,
            id="parallelism-is-capped-by-the-completions-wanted",
        ),
        pytest.param(
            make_job().parallelism(2).completions(3).typed(),
            [make_pod("j-0", S), make_pod("j-1", R), make_pod("j-2", R)],
            [],
            [],
            JobPhase.RUNNING,
            2,
            id="one-succeeded-two-running-wants-no-more",
        ),
        pytest.param(
            make_job().parallelism(2).completions(4).typed(),
            [make_pod("j-0", F), make_pod("j-1", R)],
            [2],
            [],
            JobPhase.RUNNING,
            2,
            id="a-failed-pod-is-replaced-within-the-backoff-limit",
        ),
        pytest.param(
            make_job().parallelism(2).completions(2).typed(),
            [make_pod("j-0", R, terminating=True), make_pod("j-1", R)],
            [2],
            [],
            JobPhase.RUNNING,
            2,
            id="a-pod-being-deleted-is-neither-active-nor-failed-and-is-replaced",
        ),
        pytest.param(
            make_job().parallelism(0).typed(),
            [],
            [],
            [],
            JobPhase.PENDING,
            0,
            id="parallelism-0-starts-nothing",
        ),
        pytest.param(
            make_job().parallelism(2).completions(2).suspended().typed(),
            [make_pod("j-0", R), make_pod("j-1", P)],
            [],
            ["j-0", "j-1"],
            JobPhase.SUSPENDED,
            0,
            id="suspending-stops-active-pods",
        ),
        pytest.param(
            make_job().parallelism(2).completions(2).typed(),
            [make_pod("j-0", S), make_pod("j-1", S)],
            [],
            [],
            JobPhase.SUCCEEDED,
            0,
            id="enough-successes-complete-the-job",
        ),
        pytest.param(
            make_job().parallelism(2).completions(2).backoff_limit(0).typed(),
            [make_pod("j-0", F), make_pod("j-1", R)],
            [],
            ["j-1"],
            JobPhase.FAILED,
            0,
            id="one-failure-past-the-limit-fails-and-stops-the-rest",
        ),
        pytest.param(
            started(make_job().deadline(10)),
            [make_pod("j-0", R)],
            [],
            ["j-0"],
            JobPhase.FAILED,
            0,
            id="past-the-deadline-fails-and-stops-the-rest",
        ),
        pytest.param(
            make_job().typed(),
            [make_pod("j-0", R, terminating=True), make_pod("j-7", F, terminating=True)],
            [8],
            [],
            JobPhase.PENDING,
            1,
            id="next-attempt-follows-the-highest-name-even-of-pods-being-deleted",
        ),
    ],
)
def test_decide(
    job: Job, pods: list[Pod], create: list[int], delete: list[str], phase: JobPhase, active: int
) -> None:
    decision = decide(job, pods, T0 + timedelta(seconds=10))
    assert (decision.create, decision.delete) == (create, delete)
    assert (decision.status.phase, decision.status.active) == (phase, active)


def test_decide_records_generation_counts_and_completions_text() -> None:
    job = make_job().completions(3).typed(generation=4)
    decision = decide(job, [make_pod("j-0", S), make_pod("j-1", F)], T0)
    status = decision.status
    assert (status.observed_generation, status.succeeded, status.failed) == (4, 1, 1)
    assert status.completions_text == "1/3"


def test_decide_leaves_the_job_it_was_given_untouched() -> None:
    job = make_job().typed()
    decide(job, [make_pod("j-0", S)], T0)
    assert job.status == JobStatus()


def test_a_finished_job_decides_nothing_new_on_later_calls() -> None:
    job = make_job().typed()
    first = decide(job, [make_pod("j-0", S)], T0)
    job.status = first.status
    later = decide(job, [make_pod("j-0", S)], T0 + timedelta(hours=1))
    assert later.status == first.status
    assert (later.create, later.delete, later.notes, later.delete_job) == ([], [], [], False)


def test_set_condition_moves_the_transition_time_only_when_the_status_changes() -> None:
    status = JobStatus()
    assert set_condition(status, ConditionType.SUSPENDED, True, "JobSuspended", "", T0)
    later = T0 + timedelta(seconds=5)
    assert not set_condition(status, ConditionType.SUSPENDED, True, "JobSuspended", "", later)
    assert status.conditions[0].last_transition_time == T0
    assert set_condition(status, ConditionType.SUSPENDED, False, "JobResumed", "", later)
    assert [(c.status, c.last_transition_time) for c in status.conditions] == [("False", later)]


def test_a_shrunk_workloads_surplus_pods_are_stopped_and_not_replaced() -> None:
    from cnai.batch.workload import Gate

    job = started(make_job().parallelism(3).completions(3))
    pods = [make_pod(f"j-{i}", R) for i in range(3)]
    decision = decide(job, pods, T0, Gate(True, 1, surplus=("j-2", "j-1")))
    assert (decision.delete, decision.create, decision.status.active) == (["j-2", "j-1"], [], 1)


def test_surplus_names_the_pods_beyond_the_placement_highest_numbered_first() -> None:
    from cnai.batch.workload import surplus
    from cnai.scheduling.api import (
        Admission,
        PodPlacement,
        PodSetAssignment,
        Workload,
        WorkloadSpec,
        WorkloadStatus,
    )

    at = PodPlacement(node_name="node-a", gpus=[])
    wl = Workload(
        spec=WorkloadSpec(queue_name="default", pod_sets=[]),
        status=WorkloadStatus(
            admission=Admission(
                cluster_queue="default",
                pod_set_assignments=[PodSetAssignment(name="main", count=1, placements=[at])],
            )
        ),
    )
    pods = [make_pod(f"j-{i}", R) for i in (2, 0, 1)]
    for p in pods:
        p.spec.node_name = "node-a"
    assert surplus(wl, pods) == ("j-2", "j-1")
