"""Quota: nominal, cohort borrowing, borrowing and lending limits, gangs, partial admission."""

from __future__ import annotations

import pytest

from cnai.scheduling.admission import Snapshot

from ..builders import make_cq, make_wl, world
from .helpers import admitted, flavors, run


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            world(make_cq("a").nominal(gpu=4)).waiting(make_wl("w").pods(4, gpu=1)).build(),
            {"w": 4},
            id="gang-fits-in-nominal-quota",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4))
            .running(make_wl("r").pods(1, gpu=1))
            .waiting(make_wl("w").pods(4, gpu=1))
            .build(),
            {},
            id="4-pod-gang-with-3-free-never-gets-3",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4))
            .running(make_wl("r").pods(1, gpu=1))
            .waiting(make_wl("w").pods(4, gpu=1).min(2))
            .build(),
            {"w": 3},
            id="partial-admission-takes-the-largest-count-that-fits",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4))
            .running(make_wl("r").pods(3, gpu=1))
            .waiting(make_wl("w").pods(4, gpu=1).min(2))
            .build(),
            {},
            id="partial-admission-never-goes-below-min-count",
        ),
        pytest.param(
            world(make_cq("a").nominal(cpu=8, gpu=4))
            .waiting(make_wl("w").pods(2, "driver", cpu=4).pods(4, "workers", gpu=2))
            .build(),
            {},
            id="pod-sets-are-all-or-nothing-together",
        ),
        pytest.param(
            world(make_cq("a").nominal(cpu="8", memory="16Gi"))
            .waiting(make_wl("w").pods(3, cpu="2500m", memory="5Gi"))
            .build(),
            {"w": 3},
            id="cpu-and-memory-quantities",
        ),
        pytest.param(
            world(make_cq("a").cohort("c").nominal(gpu=2), make_cq("b").cohort("c").nominal(gpu=4))
            .waiting(make_wl("w").pods(5, gpu=1))
            .build(),
            {"w": 5},
            id="borrows-unused-quota-from-the-cohort",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=2), make_cq("b").nominal(gpu=4))
            .waiting(make_wl("w").pods(5, gpu=1))
            .build(),
            {},
            id="no-cohort-no-borrowing",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=2).borrowing_limit(gpu=2),
                make_cq("b").cohort("c").nominal(gpu=4),
            )
            .waiting(make_wl("w").pods(5, gpu=1))
            .build(),
            {},
            id="borrowing-limit-caps-what-it-borrows",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=2).borrowing_limit(gpu=2),
                make_cq("b").cohort("c").nominal(gpu=4),
            )
            .waiting(make_wl("w").pods(5, gpu=1).min(1))
            .build(),
            {"w": 4},
            id="borrowing-limit-with-partial-admission",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=2),
                make_cq("b").cohort("c").nominal(gpu=4).lending_limit(gpu=1),
            )
            .waiting(make_wl("w").pods(4, gpu=1))
            .build(),
            {},
            id="lending-limit-caps-what-others-borrow",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=2),
                make_cq("b").cohort("c").nominal(gpu=4).lending_limit(gpu=1),
            )
            .waiting(make_wl("w").pods(3, gpu=1), make_wl("x").pods(3, gpu=1).cq("b"))
            .build(),
            {"w": 3, "x": 3},
            id="lender-keeps-its-guaranteed-quota",
        ),
        pytest.param(
            world(make_cq("a").cohort("c").nominal(gpu=2), make_cq("b").cohort("c").nominal(gpu=2))
            .running(make_wl("r").pods(1, gpu=1).cq("b"))
            .waiting(make_wl("w").pods(4, gpu=1))
            .build(),
            {},
            id="gang-waits-when-cohort-has-3-of-4-gpus",
        ),
    ],
)
def test_quota(snapshot: Snapshot, expected: dict[str, int]) -> None:
    assert admitted(run(snapshot)) == expected


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        pytest.param(
            world(make_cq("a").nominal("a100", gpu=4).nominal("h100", gpu=4))
            .waiting(make_wl("w").pods(2, gpu=1))
            .build(),
            {"w": "a100"},
            id="first-flavor-with-room-wins",
        ),
        pytest.param(
            world(make_cq("a").nominal("a100", gpu=4).nominal("h100", gpu=4))
            .running(make_wl("r").pods(3, gpu=1).flavor("a100"))
            .waiting(make_wl("w").pods(2, gpu=1))
            .build(),
            {"w": "h100"},
            id="next-flavor-when-the-first-is-full",
        ),
        pytest.param(
            world(make_cq("a").nominal("a100", gpu=2).nominal("h100", gpu=2))
            .waiting(make_wl("w").pods(3, gpu=1))
            .build(),
            {},
            id="a-pod-set-is-never-split-over-flavors",
        ),
    ],
)
def test_flavor_assignment(snapshot: Snapshot, expected: dict[str, str]) -> None:
    assert flavors(run(snapshot)) == expected


def test_admitting_while_borrowing_is_reported() -> None:
    snap = (
        world(make_cq("a").cohort("c").nominal(gpu=2), make_cq("b").cohort("c").nominal(gpu=2))
        .waiting(make_wl("w").pods(3, gpu=1))
        .build()
    )
    (admit,) = run(snap).admit
    assert admit.borrowing
    assert admit.pod_sets[0].usage == {"gpu": 3}


def test_several_workloads_are_admitted_in_one_cycle_until_quota_runs_out() -> None:
    snap = (
        world(make_cq("a").nominal(gpu=4))
        .waiting(*(make_wl(f"w{i}").pods(1, gpu=1).at(i) for i in range(6)))
        .build()
    )
    assert admitted(run(snap)) == {"w0": 1, "w1": 1, "w2": 1, "w3": 1}
