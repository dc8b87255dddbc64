"""A Workload's status after a resize, as pure functions: grown with new placements,
trimmed to a lowered spec count keeping the given placements; the quota each pod set
holds follows its count."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cnai.core.meta import ObjectMeta
from cnai.scheduling import snapshots, transitions
from cnai.scheduling.api import (
    Admission,
    PodPlacement,
    PodSet,
    PodSetAssignment,
    Workload,
    WorkloadPhase,
    WorkloadSpec,
    WorkloadStatus,
)


def at(node: str) -> PodPlacement:
    return PodPlacement(node_name=node)


def admitted(
    count: int, spec_count: int, phase: WorkloadPhase = WorkloadPhase.ADMITTED
) -> Workload:
    """An elastic workload holding ``count`` pods of 500m cpu, one per node n0, n1, ..."""
    assignment = PodSetAssignment(
        name="main",
        flavors={"cpu": "default"},
        count=count,
        resource_usage={"cpu": str(Decimal("0.5") * count)},
        placements=[at(f"n{i}") for i in range(count)],
    )
    return Workload(
        metadata=ObjectMeta(name="w", namespace="default"),
        spec=WorkloadSpec(
            pod_sets=[PodSet(name="main", count=spec_count, min_count=1, requests={"cpu": "500m"})]
        ),
        status=WorkloadStatus(
            phase=phase,
            admission=Admission(cluster_queue="default", pod_set_assignments=[assignment]),
        ),
    )


def test_a_grown_workload_holds_the_quota_of_its_new_count() -> None:
    wl = admitted(1, 3)
    out = transitions.resized(wl.status, {"main": 3}, {"main": [at("n1"), at("n2")]})
    assert out.admission is not None
    (a,) = out.admission.pod_set_assignments
    assert (a.count, [p.node_name for p in a.placements]) == (3, ["n0", "n1", "n2"])
    assert Decimal(a.resource_usage["cpu"]) == Decimal("1.5")


def test_a_trimmed_workload_keeps_the_given_placements_and_sets_no_condition() -> None:
    wl = admitted(3, 1)
    out = transitions.trimmed(wl.status, {"main": 1}, {"main": [at("n2")]})
    assert out.admission is not None
    (a,) = out.admission.pod_set_assignments
    assert (a.count, [p.node_name for p in a.placements]) == (1, ["n2"])
    assert Decimal(a.resource_usage["cpu"]) == Decimal("0.5")
    assert out.phase is WorkloadPhase.ADMITTED
    assert out.conditions == []  # nothing was taken from it: no Shrunk condition
    assert transitions.trim_text(out) == (
        "Resized to 1 pods: its spec asks for fewer; the surplus pods are stopped"
    )


@pytest.mark.parametrize(
    ("wl", "lowered"),
    [
        pytest.param(admitted(3, 1), {"main": 1}, id="spec-below-admission-is-trimmed"),
        pytest.param(admitted(1, 3), {}, id="spec-above-admission-is-growth-not-trim"),
        pytest.param(admitted(2, 2), {}, id="spec-equal-to-admission"),
        pytest.param(
            admitted(3, 1, WorkloadPhase.EVICTING), {}, id="an-evicting-workload-is-left-alone"
        ),
        pytest.param(
            admitted(3, 1, WorkloadPhase.FINISHED), {}, id="a-finished-workload-is-left-alone"
        ),
    ],
)
def test_lowered_counts(wl: Workload, lowered: dict[str, int]) -> None:
    assert snapshots.lowered_counts(wl) == lowered


def test_a_min_count_raised_above_the_admitted_count_is_no_floor_below_it() -> None:
    """minParallelism edited up past what is admitted: the core sees the workload as not
    shrinkable (least = its admitted count), never as smaller than its minimum."""
    wl = admitted(2, 4)
    wl.spec.pod_sets[0].min_count = 3
    (ps,) = snapshots.admitted(wl, snapshots.Priorities({})).pod_sets
    assert (ps.count, ps.least, ps.wanted) == (2, 2, 4)
    wl.spec.pod_sets[0].min_count = 1
    (ps,) = snapshots.admitted(wl, snapshots.Priorities({})).pod_sets
    assert (ps.count, ps.least) == (2, 1)
