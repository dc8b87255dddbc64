"""Anti-starvation: a head that waited too long (time or bypasses) holds its queue and
stops the cohort from borrowing what it needs, so capacity gathers for it."""

from __future__ import annotations

import pytest

from cnai.scheduling.admission import Snapshot

from ..builders import make_cq, make_wl, world
from .helpers import admitted, run


@pytest.mark.parametrize(
    ("snapshot", "seconds", "expected"),
    [
        pytest.param(
            world(make_cq("a").nominal(gpu=4).starvation(wait_seconds=600))
            .running(make_wl("r").pods(2, gpu=1))
            .waiting(make_wl("gang").pods(4, gpu=1).at(0), make_wl("small").pods(1, gpu=1).at(1))
            .build(),
            60,
            {"small": 1},
            id="small-jobs-pass-a-gang-that-has-not-waited-long",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4).starvation(wait_seconds=600))
            .running(make_wl("r").pods(2, gpu=1))
            .waiting(make_wl("gang").pods(4, gpu=1).at(0), make_wl("small").pods(1, gpu=1).at(1))
            .build(),
            601,
            {},
            id="gang-that-waited-past-the-limit-holds-its-queue",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4).starvation(bypasses=3))
            .running(make_wl("r").pods(2, gpu=1))
            .waiting(
                make_wl("gang").pods(4, gpu=1).at(0).bypassed(3),
                make_wl("small").pods(1, gpu=1).at(1),
            )
            .build(),
            0,
            {},
            id="gang-passed-too-often-holds-its-queue",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=2).starvation(wait_seconds=600),
                make_cq("b").cohort("c").nominal(gpu=2),
            )
            .running(make_wl("r").pods(1, gpu=1).cq("b"))
            .waiting(
                make_wl("gang").pods(4, gpu=1).at(0),
                make_wl("b-small").pods(2, gpu=1).cq("b").at(5),
            )
            .build(),
            601,
            {},
            id="starving-gang-stops-the-cohort-borrowing-what-it-needs",
        ),
        pytest.param(
            world(
                make_cq("a").cohort("c").nominal(gpu=2).starvation(wait_seconds=600),
                make_cq("b").cohort("c").nominal(gpu=2),
            )
            .running(make_wl("r").pods(1, gpu=1).cq("b"))
            .waiting(
                make_wl("gang").pods(4, gpu=1).at(0),
                make_wl("b-small").pods(1, gpu=1).cq("b").at(5),
            )
            .build(),
            601,
            {"b-small": 1},
            id="others-still-use-their-own-nominal-quota",
        ),
    ],
)
def test_starvation_guard(snapshot: Snapshot, seconds: float, expected: dict[str, int]) -> None:
    assert admitted(run(snapshot, seconds)) == expected


def test_bypasses_are_counted_when_a_later_workload_is_admitted() -> None:
    snap = (
        world(make_cq("a").nominal(gpu=4).starvation(bypasses=5))
        .running(make_wl("r").pods(2, gpu=1))
        .waiting(
            make_wl("gang").pods(4, gpu=1).at(0).bypassed(1), make_wl("small").pods(1, gpu=1).at(1)
        )
        .build()
    )
    gang = run(snap).waiting("default/gang")
    assert gang is not None
    assert (gang.bypassed, gang.starving) == (2, False)


def test_no_bypass_is_counted_in_a_queue_that_admitted_nothing() -> None:
    """Waiting together is not being passed: with nothing admitted in the queue this
    cycle, no waiting workload's bypass count moves (an off-by-one once counted one for
    all but the last, starving queues that merely waited)."""
    snap = (
        world(make_cq("a").nominal(gpu=4).starvation(bypasses=2))
        .running(make_wl("r").pods(4, gpu=1))
        .waiting(
            make_wl("first").pods(2, gpu=1).at(0).bypassed(1),
            make_wl("second").pods(1, gpu=1).at(1).bypassed(1),
            make_wl("third").pods(1, gpu=1).at(2),
        )
        .build()
    )
    decisions = run(snap)
    assert not decisions.admit
    waits = {w.workload: (w.bypassed, w.starving) for w in decisions.wait}
    assert waits == {
        "default/first": (1, False),
        "default/second": (1, False),
        "default/third": (0, False),
    }


def test_a_stream_of_small_jobs_cannot_starve_a_gang() -> None:
    """Replays cycles: small jobs keep arriving and finishing; the gang gets in."""
    cq = make_cq("a").nominal(gpu=4).starvation(bypasses=2)
    running = [make_wl("r0").pods(1, gpu=1), make_wl("r1").pods(1, gpu=1).at(1)]
    gang = make_wl("gang").pods(4, gpu=1).at(2)
    bypassed = 0
    for cycle in range(10):
        arrivals = [make_wl(f"s{cycle}").pods(1, gpu=1).at(10 + cycle)]
        snap = world(cq).running(*running).waiting(gang.bypassed(bypassed), *arrivals).build()
        decisions = run(snap, 10 + cycle)
        if decisions.admitted("default/gang"):
            break
        wait = decisions.waiting("default/gang")
        assert wait is not None
        bypassed = wait.bypassed
        # The oldest running job finishes; newly admitted ones start.
        running = running[1:] + [w for w in arrivals if decisions.admitted(w.build().key)]
    else:
        pytest.fail("the gang starved")
    assert cycle <= 4
