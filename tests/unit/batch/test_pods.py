"""Pod names, the pod built from a job's template, and how pods are counted."""

from __future__ import annotations

import pytest

from cnai.batch.pods import PodCounts, attempt_of, build_pod, next_attempt, pod_name
from cnai.core.meta import dns1123_label_error
from cnai.core.pods import PodPhase

from .builders import make_job, make_pod


@pytest.mark.parametrize(
    ("job", "attempt", "expected"),
    [
        pytest.param("train", 0, "train-0", id="short-name-keeps-the-job-name"),
        pytest.param("a" * 63, 12, "a" * 60 + "-12", id="long-name-is-cut-to-63"),
        pytest.param("a" * 60 + "-b", 7, "a" * 60 + "-7", id="cut-never-leaves-a-dash-before-it"),
    ],
)
def test_pod_name(job: str, attempt: int, expected: str) -> None:
    name = pod_name(job, attempt)
    assert name == expected
    assert dns1123_label_error(name) is None


def test_attempts_come_from_pod_names() -> None:
    pods = [make_pod("j-3"), make_pod("j-10"), make_pod("stray")]
    assert [attempt_of(p) for p in pods] == [3, 10, None]
    assert next_attempt(pods) == 11
    assert next_attempt([]) == 0


def test_build_pod_copies_the_template_and_adds_the_job_labels() -> None:
    job = make_job("train").template_labels(team="a").typed(uid="u-1")
    job.spec.template.metadata.annotations["note"] = "x"
    pod = build_pod(job, 2)
    assert pod.metadata.name == "train-2"
    assert pod.metadata.namespace == "default"
    assert pod.metadata.labels == {
        "team": "a",
        "cnai.io/job-name": "train",
        "cnai.io/job-uid": "u-1",
    }
    assert pod.metadata.annotations == {"note": "x"}
    assert pod.spec == job.spec.template.spec
    assert pod.spec is not job.spec.template.spec


def test_counts() -> None:
    counts = PodCounts.of(
        [
            make_pod("j-0", PodPhase.PENDING),
            make_pod("j-1", PodPhase.RUNNING),
            make_pod("j-2", PodPhase.RUNNING, terminating=True),
            make_pod("j-3", PodPhase.SUCCEEDED),
            make_pod("j-4", PodPhase.SUCCEEDED, terminating=True),
            make_pod("j-5", PodPhase.FAILED),
            make_pod("j-6", PodPhase.FAILED, terminating=True),
            make_pod("j-7", PodPhase.UNKNOWN),
        ]
    )
    assert [p.metadata.name for p in counts.active] == ["j-0", "j-1", "j-7"]
    assert (counts.succeeded, counts.failed, counts.running) == (2, 1, 1)
