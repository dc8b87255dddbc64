"""Queue order: priority then FIFO; StrictFIFO heads block, BestEffortFIFO heads do not;
fair sharing by weighted dominant resource share; growth of elastic workloads."""

from __future__ import annotations

import pytest

from cnai.scheduling.admission import Snapshot, WaitReason

from ..builders import make_cq, make_wl, world
from .helpers import admitted, run


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            world(make_cq("a").nominal(gpu=4))
            .waiting(make_wl("big").pods(6, gpu=1).at(0), make_wl("small").pods(1, gpu=1).at(1))
            .build(),
            {"small": 1},
            id="best-effort-fifo-lets-the-next-one-try",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4).strict())
            .running(make_wl("r").pods(2, gpu=1))
            .waiting(make_wl("big").pods(4, gpu=1).at(0), make_wl("small").pods(1, gpu=1).at(1))
            .build(),
            {},
            id="strict-fifo-head-blocks-its-queue",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=2))
            .waiting(
                make_wl("old-low").pods(2, gpu=1).at(0),
                make_wl("new-high").pods(2, gpu=1).priority(5).at(10),
            )
            .build(),
            {"new-high": 2},
            id="higher-priority-goes-first",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=2))
            .waiting(make_wl("second").pods(2, gpu=1).at(10), make_wl("first").pods(2, gpu=1).at(0))
            .build(),
            {"first": 2},
            id="equal-priority-is-first-come-first-served",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=2),
                make_cq("b").cohort("c").nominal(gpu=2),
                make_cq("lender").cohort("c").nominal(gpu=4),
            )
            .running(make_wl("a-borrows").pods(4, gpu=1).cq("a"))
            .waiting(
                make_wl("a-more").pods(2, gpu=1).cq("a").priority(100).at(0),
                make_wl("b-more").pods(4, gpu=1).cq("b").at(5),
            )
            .build(),
            {"b-more": 4},
            id="fair-sharing-serves-the-cq-borrowing-least-first",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=2),
                make_cq("b").cohort("c").nominal(gpu=2),
                make_cq("lender").cohort("c").nominal(gpu=4),
            )
            .running(make_wl("a-borrows").pods(4, gpu=1).cq("a"))
            .waiting(
                make_wl("a-more").pods(2, gpu=1).cq("a").priority(100).at(0),
                make_wl("b-more").pods(4, gpu=1).cq("b").at(5),
            )
            .without_fair_sharing()
            .build(),
            {"a-more": 2},
            id="without-fair-sharing-priority-decides",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=0).weight(3),
                make_cq("b").cohort("c").nominal(gpu=0).weight(1),
                make_cq("lender").cohort("c").nominal(gpu=8),
            )
            .running(make_wl("a1").pods(3, gpu=1).cq("a"), make_wl("b1").pods(2, gpu=1).cq("b"))
            .waiting(
                make_wl("a2").pods(3, gpu=1).cq("a").at(5),
                make_wl("b2").pods(3, gpu=1).cq("b").at(0),
            )
            .build(),
            {"a2": 3},
            id="a-heavier-weight-earns-a-larger-share",
        ),
    ],
)
def test_order(snapshot: Snapshot, expected: dict[str, int]) -> None:
    assert admitted(run(snapshot)) == expected


def test_blocked_workloads_say_what_they_wait_behind() -> None:
    snap = (
        world(make_cq("a").nominal(gpu=4).strict())
        .running(make_wl("r").pods(2, gpu=1))
        .waiting(make_wl("big").pods(4, gpu=1).at(0), make_wl("small").pods(1, gpu=1).at(1))
        .build()
    )
    small = run(snap).waiting("default/small")
    assert small is not None
    assert small.reason == WaitReason.BLOCKED
    assert small.message == (
        "waiting behind default/big, which heads a StrictFIFO queue in clusterqueue a"
    )


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            world(make_cq("a").nominal(gpu=8))
            .running(make_wl("el").pods(2, gpu=1).min(2).wants(6))
            .build(),
            {"default/el": 6},
            id="growth-is-admitted-when-it-fits",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=8))
            .running(make_wl("el").pods(2, gpu=1).wants(12), make_wl("other").pods(3, gpu=1))
            .build(),
            {"default/el": 5},
            id="growth-takes-what-is-left",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4))
            .running(make_wl("el").pods(2, gpu=1).wants(4))
            .waiting(make_wl("pending").pods(2, gpu=1))
            .build(),
            {},
            id="pending-workloads-go-before-growth",
        ),
    ],
)
def test_growth(snapshot: Snapshot, expected: dict[str, int]) -> None:
    decisions = run(snapshot)
    assert {r.workload: sum(r.counts.values()) for r in decisions.resize} == expected
