"""The inadmissible set (Kueue's): a workload that waited for quota and found no
preemption is skipped by the next cycles while nothing that could change the answer
changed, and tried again as soon as something did."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cnai.scheduling.admission import Snapshot, WaitReason

from ..builders import CQBuilder, make_cq, make_wl, world
from .helpers import admitted, run


def _cohort() -> tuple[object, ...]:
    """``a`` and ``b`` share cohort ``c`` (4 gpu each)."""
    return (
        make_cq("a").cohort("c").nominal(gpu=4).starvation(wait_seconds=600, bypasses=3),
        make_cq("b").cohort("c").nominal(gpu=4),
    )


def _first() -> Snapshot:
    """``big`` (2 gpu) does not fit: ``a`` runs 3 gpu and ``b`` borrows 1: all 8 used."""
    a, b = _cohort()
    return (
        world(a, b)  # type: ignore[arg-type]
        .running(make_wl("mine").pods(3, gpu=1), make_wl("theirs").pods(5, gpu=1).cq("b"))
        .waiting(make_wl("big").pods(2, gpu=1).never_preempts())
        .build()
    )


def _then(
    running: tuple[object, ...] = (),
    waiting: tuple[object, ...] = (),
    a_gpu: int = 4,
    extra: tuple[object, ...] = (),
) -> Snapshot:
    a = make_cq("a").cohort("c").nominal(gpu=a_gpu).starvation(wait_seconds=600, bypasses=3)
    b = make_cq("b").cohort("c").nominal(gpu=4)
    return (
        world(a, b, *extra)  # type: ignore[arg-type]
        .running(*running)  # type: ignore[arg-type]
        .waiting(*(waiting or (make_wl("big").pods(2, gpu=1).never_preempts(),)))  # type: ignore[arg-type]
        .build()
    )


MINE = make_wl("mine").pods(3, gpu=1)
THEIRS = make_wl("theirs").pods(5, gpu=1).cq("b")


@pytest.mark.parametrize(
    ("then", "seconds", "skipped", "admits"),
    [
        pytest.param(
            _then(running=(MINE, THEIRS)),
            1,
            True,
            {},
            id="nothing-changed-so-the-workload-that-did-not-fit-is-skipped",
        ),
        pytest.param(
            _then(running=(MINE, THEIRS, make_wl("more").pods(1, gpu=1).cq("b"))),
            1,
            True,
            {},
            id="more-usage-in-its-cohort-cannot-help-so-it-stays-skipped",
        ),
        pytest.param(
            _then(
                running=(MINE, THEIRS, make_wl("far").pods(1, gpu=1).cq("x")),
                extra=(make_cq("x").cohort("other").nominal(gpu=1),),
            ),
            1,
            True,
            {},
            id="a-clusterqueue-of-another-cohort-does-not-wake-it",
        ),
        pytest.param(
            _then(running=(THEIRS,)),
            1,
            False,
            {"big": 2},
            id="a-workload-of-its-clusterqueue-finished-so-it-is-retried-and-admitted",
        ),
        pytest.param(
            _then(running=(MINE, make_wl("theirs").pods(3, gpu=1).cq("b"))),
            1,
            False,
            {"big": 2},
            id="the-cohort-borrower-shrank-so-it-is-retried-and-admitted",
        ),
        pytest.param(
            _then(running=(MINE, THEIRS), a_gpu=6),
            1,
            False,
            {"big": 2},
            id="its-quota-was-raised-so-it-is-retried-and-admitted",
        ),
        pytest.param(
            _then(running=(MINE, THEIRS.evicting())),
            1,
            False,
            {},
            id="a-cohort-workload-started-evicting-so-it-is-retried",
        ),
        pytest.param(
            _then(
                running=(MINE, THEIRS),
                waiting=(make_wl("big").pods(2, gpu=1).priority(5).never_preempts(),),
            ),
            1,
            False,
            {},
            id="the-workload-itself-changed-so-it-is-retried",
        ),
        pytest.param(
            _then(running=(MINE, THEIRS)),
            601,
            False,
            {},
            id="a-workload-that-waited-too-long-is-always-reconsidered",
        ),
        pytest.param(
            _then(
                running=(MINE, THEIRS),
                waiting=(make_wl("big").pods(2, gpu=1).never_preempts().bypassed(3),),
            ),
            1,
            False,
            {},
            id="a-workload-passed-too-often-is-always-reconsidered",
        ),
    ],
)
def test_inadmissible_workload_is_skipped_until_something_changes(
    then: Snapshot, seconds: float, skipped: bool, admits: dict[str, int]
) -> None:
    first = run(_first())
    entry = first.inadmissible.get("default/big")
    assert entry is not None
    assert admitted(first) == {}
    second = run(replace(then, inadmissible=first.inadmissible), seconds)
    assert admitted(second) == admits
    # A skipped workload keeps its entry as it was (not tried again: same facts).
    assert (second.inadmissible.get("default/big") is entry) == skipped
    if not admits:
        # A skipped workload is not reported again: it waits as it did (same reason
        # and message); one tried afresh is reported.
        assert (second.waiting("default/big") is None) == skipped
    # Without the carried set the same snapshot decides the same admissions.
    assert admitted(run(then, seconds)) == admits


@pytest.mark.parametrize(
    ("snapshot", "recorded"),
    [
        pytest.param(_first(), True, id="waiting-for-quota-with-no-preemption-is-recorded"),
        pytest.param(
            world(make_cq("a").nominal(gpu=2).strict())
            .waiting(make_wl("big").pods(4, gpu=1).never_preempts().at(0))
            .build(),
            False,
            id="a-never-fitting-workload-is-not-recorded-its-reason-differs",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4).strict())
            .running(make_wl("r").pods(2, gpu=1))
            .waiting(make_wl("big").pods(4, gpu=1).never_preempts())
            .build(),
            False,
            id="a-strictfifo-head-is-not-recorded-it-holds-its-queue",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4).preempt_within())
            .running(make_wl("low").pods(4, gpu=1).priority(0))
            .waiting(make_wl("big").pods(4, gpu=1).priority(10))
            .build(),
            False,
            id="a-preemptor-is-not-recorded",
        ),
    ],
)
def test_what_is_recorded_as_inadmissible(snapshot: Snapshot, recorded: bool) -> None:
    assert ("default/big" in run(snapshot).inadmissible) == recorded


@pytest.mark.parametrize(
    ("bypasses", "reported"),
    [
        pytest.param(5, 1, id="the-guard-counts-bypasses-so-the-new-count-is-reported"),
        pytest.param(0, None, id="no-bypass-guard-so-nothing-to-report"),
    ],
)
def test_a_skipped_workload_still_counts_bypasses(bypasses: int, reported: int | None) -> None:
    """``big`` is skipped; ``small`` behind it fits, so ``big`` is passed once more."""

    def queue() -> CQBuilder:
        return make_cq("a").nominal(gpu=4).starvation(bypasses=bypasses)

    snap = (
        world(queue())
        .running(make_wl("r").pods(2, gpu=1))
        .waiting(make_wl("big").pods(4, gpu=1).never_preempts().at(0))
        .build()
    )
    first = run(snap)
    again = (
        world(queue())
        .running(make_wl("r").pods(2, gpu=1))
        .waiting(
            make_wl("big").pods(4, gpu=1).never_preempts().at(0),
            make_wl("small").pods(1, gpu=1).at(1),
        )
        .build()
    )
    second = run(replace(again, inadmissible=first.inadmissible))
    assert admitted(second) == {"small": 1}
    assert second.inadmissible["default/big"] is first.inadmissible["default/big"]
    wait = second.waiting("default/big")
    assert (wait.bypassed if wait is not None else None) == reported
    if wait is not None:
        assert (wait.reason, wait.message) == (
            WaitReason.NO_QUOTA,
            first.inadmissible["default/big"].why,
        )


def test_an_equivalent_workload_shares_a_wait_until_a_preemption_frees_quota() -> None:
    """Within one pass, w2 (like w1) would wait for quota for the same reason, until p,
    ranked between them, preempts b and frees quota in the cohort: then w2 is tried
    afresh and finds room promised once b has stopped."""
    x = make_cq("x").cohort("c").nominal(cpu=2).preempt_within()
    y = make_cq("y").cohort("c").nominal(cpu=2)
    snap = (
        world(x, y)
        # Both queues use their nominal 2 cpu; the cohort has nothing free.
        .running(make_wl("b").pods(2, cpu=1).cq("x"), make_wl("a").pods(2, cpu=1).cq("y"))
        .waiting(
            # Same share and priority in both queues: they go by creation time.
            make_wl("w1").pods(1, cpu=1).cq("y").priority(5).at(0).never_preempts(),
            make_wl("p").pods(1, cpu=1).cq("x").priority(5).at(1),
            make_wl("w2").pods(1, cpu=1).cq("y").priority(5).at(2).never_preempts(),
        )
        .build()
    )
    decisions = run(snap)
    assert [p.victim for p in decisions.preempt] == ["default/b"]
    reasons = {w.workload: w.reason for w in decisions.wait}
    assert reasons == {
        "default/w1": WaitReason.NO_QUOTA,
        "default/p": WaitReason.PREEMPTING,
        "default/w2": WaitReason.WAITING_FOR_PREEMPTION,
    }


def test_a_skipped_run_is_checked_again_after_a_preemption_in_its_cohort() -> None:
    """w1 and w2 waited for quota last pass, and their entries held as this pass began,
    so they form one run to skip. But p, ranked first, preempts b and frees quota in the
    cohort before y's queue reaches the run: the run is then checked entry by entry, the
    floors no longer hold, and w1 and w2 are tried again (n took the last promised cpu,
    so they wait for quota, reported afresh)."""
    x = make_cq("x").cohort("c").nominal(cpu=2).preempt_within()
    y = make_cq("y").cohort("c").nominal(cpu=2)
    running = (make_wl("b").pods(2, cpu=1).cq("x"), make_wl("a").pods(2, cpu=1).cq("y"))
    w1 = make_wl("w1").pods(1, cpu=1).cq("y").priority(5).at(2).never_preempts()
    w2 = make_wl("w2").pods(1, cpu=1).cq("y").priority(5).at(3).never_preempts()
    first = run(world(x, y).running(*running).waiting(w1, w2).build())
    assert {"default/w1", "default/w2"} <= set(first.inadmissible)

    then = (
        world(x, y)
        .running(*running)
        .waiting(
            make_wl("p").pods(1, cpu=1).cq("x").priority(5).at(0),
            # n heads y, so y's run of entries is reached only after p's turn.
            make_wl("n").pods(1, cpu=1).cq("y").priority(5).at(1).never_preempts(),
            w1,
            w2,
        )
        .build()
    )
    second = run(replace(then, inadmissible=first.inadmissible))
    assert [p.victim for p in second.preempt] == ["default/b"]
    assert {w.workload: w.reason for w in second.wait} == {
        "default/p": WaitReason.PREEMPTING,
        "default/n": WaitReason.WAITING_FOR_PREEMPTION,
        "default/w1": WaitReason.NO_QUOTA,
        "default/w2": WaitReason.NO_QUOTA,
    }
    assert second.inadmissible["default/w1"] is not first.inadmissible["default/w1"]


def test_an_entry_that_holds_again_by_its_turn_is_skipped() -> None:
    """b finished, so w's floor did not hold as the pass began; but m is admitted in b's
    place before y's queue reaches w, usage is back at w's floor, and w is skipped (the
    check is made at its turn, not at the start of the pass)."""
    x = make_cq("x").cohort("c").nominal(cpu=2)
    y = make_cq("y").cohort("c").nominal(cpu=2)
    a = make_wl("a").pods(2, cpu=1).cq("y")
    w = make_wl("w").pods(2, cpu=1).cq("y").priority(5).at(2).never_preempts()
    first = run(world(x, y).running(a, make_wl("b").pods(2, cpu=1).cq("x")).waiting(w).build())
    assert "default/w" in first.inadmissible

    then = (
        world(x, y)
        .running(a)
        .waiting(
            make_wl("m").pods(2, cpu=1).cq("x").priority(5).at(0),
            # n heads y, so w is reached only after m's turn.
            make_wl("n").pods(1, cpu=1).cq("y").priority(5).at(1).never_preempts(),
            w,
        )
        .build()
    )
    second = run(replace(then, inadmissible=first.inadmissible))
    assert admitted(second) == {"m": 2}
    assert {w.workload for w in second.wait} == {"default/n"}
    assert second.inadmissible["default/w"] is first.inadmissible["default/w"]
