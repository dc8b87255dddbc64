"""Preemption: candidates by policy, the smallest victim set, shrinking elastic victims,
and the grace period before a victim's quota is reused."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cnai.scheduling.admission import PreemptReason, Reclaim, Snapshot, WaitReason, WithinQueue

from ..builders import T0, make_cq, make_wl, world
from .helpers import admitted, run, victims


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            world(make_cq("a").nominal(gpu=4).preempt_within())
            .running(make_wl("low").pods(4, gpu=1).priority(0))
            .waiting(make_wl("high").pods(4, gpu=1).priority(10))
            .build(),
            {"low": "evict"},
            id="within-cq-evicts-lower-priority",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4))
            .running(make_wl("low").pods(4, gpu=1).priority(0))
            .waiting(make_wl("high").pods(4, gpu=1).priority(10))
            .build(),
            {},
            id="policy-never-preempts-nothing",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4).preempt_within())
            .running(make_wl("peer").pods(4, gpu=1).priority(10))
            .waiting(make_wl("high").pods(4, gpu=1).priority(10))
            .build(),
            {},
            id="lower-priority-policy-spares-equal-priority",
        ),
        pytest.param(
            world(
                make_cq("a")
                .nominal(gpu=4)
                .preempt_within(WithinQueue.LOWER_OR_NEWER_EQUAL_PRIORITY)
            )
            .running(make_wl("newer").pods(4, gpu=1).priority(10).at(60))
            .waiting(make_wl("older").pods(4, gpu=1).priority(10).at(0))
            .build(),
            {"newer": "evict"},
            id="lower-or-newer-equal-evicts-a-newer-peer",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4).preempt_within())
            .running(make_wl("low").pods(4, gpu=1).priority(0))
            .waiting(make_wl("high").pods(4, gpu=1).priority(10).never_preempts())
            .build(),
            {},
            id="priority-class-with-preemption-policy-never",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4).preempt_within())
            .running(
                make_wl("a1").pods(1, gpu=1).at(1),
                make_wl("a2").pods(1, gpu=1).at(2),
                make_wl("big").pods(2, gpu=1).at(0),
            )
            .waiting(make_wl("high").pods(2, gpu=1).priority(10))
            .build(),
            {"big": "evict"},
            id="fewest-victims-after-giving-back-the-unneeded",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4).preempt_within())
            .running(
                make_wl("old").pods(2, gpu=1).at(0),
                make_wl("new").pods(2, gpu=1).at(10),
            )
            .waiting(make_wl("high").pods(2, gpu=1).priority(10))
            .build(),
            {"new": "evict"},
            id="newest-victim-first",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4).preempt_within())
            .running(
                make_wl("p1").pods(2, gpu=1).priority(1).at(10),
                make_wl("p0").pods(2, gpu=1).priority(0).at(0),
            )
            .waiting(make_wl("high").pods(2, gpu=1).priority(10))
            .build(),
            {"p0": "evict"},
            id="lowest-priority-victim-first",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=8).preempt_within())
            .running(make_wl("elastic").pods(8, gpu=1).min(2))
            .waiting(make_wl("high").pods(3, gpu=1).priority(10))
            .build(),
            {"elastic": "shrink to 5"},
            id="elastic-victim-shrinks-by-as-few-pods-as-suffice",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=8).preempt_within())
            .running(make_wl("elastic").pods(8, gpu=1).min(4))
            .waiting(make_wl("high").pods(6, gpu=1).priority(10))
            .build(),
            {"elastic": "evict"},
            id="elastic-victim-evicted-when-its-minimum-is-still-too-big",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=4).reclaim(),
                make_cq("b").cohort("c").nominal(gpu=4),
            )
            .running(
                make_wl("b-own").pods(4, gpu=1).cq("b").at(0),
                make_wl("b-borrowed").pods(2, gpu=1).cq("b").at(5),
            )
            .running(make_wl("a-own").pods(2, gpu=1).cq("a"))
            .waiting(make_wl("w").pods(2, gpu=1))
            .build(),
            {"b-borrowed": "evict"},
            id="reclaim-evicts-a-borrower-of-another-cq",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=4).reclaim(Reclaim.LOWER_PRIORITY),
                make_cq("b").cohort("c").nominal(gpu=4),
            )
            .running(make_wl("b-borrowed").pods(6, gpu=1).cq("b").priority(5))
            .waiting(make_wl("w").pods(4, gpu=1).priority(5))
            .build(),
            {},
            id="reclaim-lower-priority-spares-an-equal-priority-borrower",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=4).reclaim(),
                make_cq("b").cohort("c").nominal(gpu=4),
            )
            .running(make_wl("b-own").pods(4, gpu=1).cq("b"))
            .waiting(make_wl("w").pods(6, gpu=1))
            .build(),
            {},
            id="reclaim-never-takes-another-cqs-nominal-quota",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=2).preempt_within(),
                make_cq("b").cohort("c").nominal(gpu=4),
            )
            .running(make_wl("low").pods(2, gpu=1))
            .running(make_wl("b-own").pods(2, gpu=1).cq("b"))
            .waiting(make_wl("high").pods(4, gpu=1).priority(10))
            .build(),
            {},
            id="no-preemption-to-borrow-without-borrow-within-cohort",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=2).preempt_within().borrow_within_cohort(),
                make_cq("b").cohort("c").nominal(gpu=4),
            )
            .running(make_wl("low").pods(2, gpu=1))
            .running(make_wl("b-own").pods(2, gpu=1).cq("b"))
            .waiting(make_wl("high").pods(4, gpu=1).priority(10))
            .build(),
            {"low": "evict"},
            id="borrow-within-cohort-preempts-then-borrows",
        ),
    ],
)
def test_victims(snapshot: Snapshot, expected: dict[str, str]) -> None:
    decisions = run(snapshot)
    assert victims(decisions) == expected
    assert admitted(decisions) == {}


def test_preemptor_waits_for_the_grace_period_and_the_victim_is_killed_after_it() -> None:
    snap = (
        world(make_cq("a").nominal(gpu=4).preempt_within())
        .running(make_wl("low").pods(4, gpu=1).grace(45))
        .waiting(make_wl("high").pods(4, gpu=1).priority(10))
        .build()
    )
    decisions = run(snap)
    (preempt,) = decisions.preempt
    assert preempt.reason == PreemptReason.IN_CLUSTER_QUEUE
    assert preempt.preemptor == "default/high"
    assert preempt.kill_after == T0 + timedelta(seconds=45)
    wait = decisions.waiting("default/high")
    assert wait is not None
    assert wait.reason == WaitReason.PREEMPTING
    assert "preempting 1 workload(s) (default/low)" in wait.message
    assert "grace period up to 45s" in wait.message


def test_victims_still_stopping_are_not_preempted_again_and_their_quota_is_held() -> None:
    snap = (
        world(make_cq("a").nominal(gpu=4).preempt_within())
        .running(make_wl("low").pods(4, gpu=1).evicting())
        .waiting(
            make_wl("high").pods(4, gpu=1).priority(10),
            make_wl("small").pods(1, gpu=1).priority(0),
        )
        .build()
    )
    decisions = run(snap)
    assert decisions.preempt == ()
    assert admitted(decisions) == {}
    high = decisions.waiting("default/high")
    assert high is not None
    assert high.reason == WaitReason.WAITING_FOR_PREEMPTION


def test_reclaim_reason_names_the_cohort() -> None:
    snap = (
        world(
            make_cq("a").cohort("c").nominal(gpu=4).reclaim(),
            make_cq("b").cohort("c").nominal(gpu=4),
        )
        .running(make_wl("b-borrowed").pods(8, gpu=1).cq("b"))
        .waiting(make_wl("w").pods(4, gpu=1))
        .build()
    )
    (preempt,) = run(snap).preempt
    assert preempt.reason == PreemptReason.IN_COHORT_RECLAMATION
    assert preempt.message == "evicted by default/w (priority 0) to free quota in cohort c"


def test_two_preemptors_never_pick_the_same_victim() -> None:
    snap = (
        world(make_cq("a").nominal(gpu=4).preempt_within())
        .running(make_wl("v1").pods(2, gpu=1).at(0), make_wl("v2").pods(2, gpu=1).at(1))
        .waiting(
            make_wl("h1").pods(2, gpu=1).priority(10).at(0),
            make_wl("h2").pods(2, gpu=1).priority(10).at(1),
        )
        .build()
    )
    assert victims(run(snap)) == {"v1": "evict", "v2": "evict"}
