"""The Job's Workload resized to what the job wants now, and the pure decision's part of
a resize: pods beyond a lowered parallelism are stopped, newest first."""

from __future__ import annotations

import pytest

from cnai.batch.decide import decide
from cnai.batch.workload import OPEN, Gate, build_workload, pod_set, resized, wanted_pods
from cnai.core.pods import PodPhase
from cnai.scheduling.api import PodSet, Workload

from .builders import T0, JobBuilder, make_job, make_pod

R, S = PodPhase.RUNNING, PodPhase.SUCCEEDED


def counts(ps: PodSet) -> tuple[int, int | None]:
    return ps.count, ps.min_count


@pytest.mark.parametrize(
    ("builder", "count", "expected"),
    [
        pytest.param(make_job().parallelism(3), 3, (3, None), id="plain-gang-has-no-min-count"),
        pytest.param(
            make_job().parallelism(3).spec(minParallelism=1),
            3,
            (3, 1),
            id="elastic-job-min-count-is-min-parallelism",
        ),
        pytest.param(
            make_job().parallelism(3).spec(minParallelism=2),
            1,
            (1, None),
            id="min-count-capped-at-a-count-lowered-by-completions",
        ),
    ],
)
def test_the_pod_set_follows_parallelism_and_min_parallelism(
    builder: JobBuilder, count: int, expected: tuple[int, int | None]
) -> None:
    assert counts(pod_set(builder.completions(9).typed(), count)) == expected


def stored(builder: JobBuilder, count: int) -> Workload:
    return build_workload(builder.completions(9).typed(), count)


@pytest.mark.parametrize(
    ("before", "after", "count", "expected"),  # before: the job as its Workload was built
    [
        pytest.param(
            make_job().parallelism(1).spec(minParallelism=1),
            make_job().parallelism(3).spec(minParallelism=1),
            3,
            (3, 1),
            id="parallelism-raised-grows-the-count-keeping-min-count",
        ),
        pytest.param(
            make_job().parallelism(3).spec(minParallelism=1),
            make_job().parallelism(1).spec(minParallelism=1),
            1,
            (1, None),
            id="parallelism-lowered-to-min-parallelism",
        ),
        pytest.param(
            make_job().parallelism(4).spec(minParallelism=1),
            make_job().parallelism(4).spec(minParallelism=3),
            4,
            (4, 3),
            id="min-parallelism-alone-changed",
        ),
        pytest.param(
            make_job().parallelism(4),
            make_job().parallelism(4),
            2,
            (2, None),
            id="fewer-completions-left-caps-the-count",
        ),
    ],
)
def test_the_workload_is_resized_to_what_the_job_wants(
    before: JobBuilder, after: JobBuilder, count: int, expected: tuple[int, int | None]
) -> None:
    wl = stored(before, before.typed().spec.parallelism)
    new = resized(wl, after.completions(9).typed(), count)
    assert new is not None
    assert counts(new.spec.pod_sets[0]) == expected
    assert new.spec.pod_sets[0].requests == wl.spec.pod_sets[0].requests
    assert new.metadata == wl.metadata  # same resourceVersion: an update at what was read


def test_an_unchanged_job_leaves_its_workload_alone() -> None:
    builder = make_job().parallelism(3).spec(minParallelism=1)
    assert resized(stored(builder, 3), builder.completions(9).typed(), 3) is None


def test_the_count_never_rises_again_as_completions_are_reached() -> None:
    job = make_job().parallelism(3).completions(4).typed()
    wanted = [wanted_pods(job, succeeded) for succeeded in range(4)]
    assert wanted == [3, 3, 2, 1]  # non-increasing: following it causes no resize loop


@pytest.mark.parametrize(
    ("gate", "delete"),
    [
        pytest.param(OPEN, ["j-3", "j-2"], id="no-scheduler-stops-the-newest"),
        pytest.param(
            Gate(True, 4), ["j-3", "j-2"], id="workload-not-trimmed-yet-the-job-stops-them-anyway"
        ),
        pytest.param(
            Gate(True, 1, surplus=("j-3", "j-2")),
            ["j-3", "j-2"],
            id="trimmed-workload-names-the-same-pods",
        ),
        pytest.param(
            Gate(False, 0, reason="Queued"), ["j-3", "j-2"], id="pending-job-stops-them-too"
        ),
    ],
)
def test_pods_beyond_a_lowered_parallelism_are_stopped_newest_first(
    gate: Gate, delete: list[str]
) -> None:
    job = make_job().parallelism(1).completions(9).typed()
    pods = [make_pod("j-0", S), *(make_pod(f"j-{i}", R) for i in (1, 2, 3))]
    decision = decide(job, pods, T0, gate)
    assert decision.delete == delete
    assert decision.create == []
    assert decision.status.active == 1


def test_parallelism_zero_stops_every_pod() -> None:
    job = make_job().parallelism(0).completions(9).typed()
    decision = decide(job, [make_pod("j-0", R), make_pod("j-1", R)], T0, OPEN)
    assert (decision.delete, decision.create, decision.status.active) == (["j-1", "j-0"], [], 0)
