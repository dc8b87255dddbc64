"""Why a workload waits, in words a user understands, and the ClusterQueue usage text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cnai.scheduling.admission import Snapshot, WaitReason
from cnai.scheduling.admission.reasons import amount

from ..builders import make_cq, make_wl, world
from .helpers import message, run


@pytest.mark.parametrize(
    ("snapshot", "name", "expected"),
    [
        pytest.param(
            world(
                make_cq("a").cohort("pool").nominal("a100", gpu=2),
                make_cq("b").cohort("pool").nominal("a100", gpu=2),
            )
            .running(make_wl("r").pods(2, gpu=1).cq("b").flavor("a100"))
            .waiting(
                make_wl("w0").pods(1, gpu=4).queue("research").at(0).priority(1),
                make_wl("w1").pods(1, gpu=4).queue("research").at(1).priority(1),
                make_wl("gang").pods(4, gpu=1).queue("research").at(2),
            )
            .build(),
            "gang",
            "needs 4 gpu in flavor a100, cohort pool has 2 free",
            id="gang-needs-4-gpu-cohort-has-2-free",
        ),
        pytest.param(
            world(make_cq("a").nominal(cpu=4, memory="8Gi"))
            .running(make_wl("r").pods(1, cpu="3500m", memory="1Gi"))
            .waiting(make_wl("w").pods(2, cpu=1, memory="1Gi").queue("dev"))
            .build(),
            "w",
            "needs 2 cpu in flavor default, clusterqueue a has 500m free",
            id="no-cohort-names-the-clusterqueue-and-millicores",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4))
            .waiting(make_wl("w").pods(8, gpu=1).queue("q"))
            .build(),
            "w",
            "needs 8 gpu but clusterqueue a can never hold more than 4 in flavor default",
            id="more-than-the-queue-can-ever-hold",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4))
            .waiting(make_wl("w").pods(1, tpu=1).queue("q"))
            .build(),
            "w",
            "requests tpu, which clusterqueue a has no quota for",
            id="resource-the-queue-has-no-quota-for",
        ),
        pytest.param(
            world(make_cq("a").nominal(gpu=4))
            .waiting(make_wl("w").pods(1, gpu=1).queue("q").cq("missing"))
            .build(),
            "w",
            "clusterqueue missing of queue q does not exist",
            id="queue-points-at-a-missing-clusterqueue",
        ),
    ],
)
def test_wait_messages(snapshot: Snapshot, name: str, expected: str) -> None:
    assert message(run(snapshot), name) == expected


def test_a_workload_that_can_never_fit_does_not_block_a_strict_queue() -> None:
    snap = (
        world(make_cq("a").nominal(gpu=4).strict())
        .waiting(make_wl("huge").pods(8, gpu=1).at(0), make_wl("ok").pods(1, gpu=1).at(1))
        .build()
    )
    decisions = run(snap)
    huge = decisions.waiting("default/huge")
    assert huge is not None
    assert huge.reason == WaitReason.INADMISSIBLE
    assert decisions.admitted("default/ok") is not None


@pytest.mark.parametrize(
    ("resource", "value", "text"),
    [
        pytest.param("gpu", Decimal(4), "4", id="whole-devices"),
        pytest.param("cpu", Decimal("0.5"), "500m", id="millicores"),
        pytest.param("memory", Decimal(16 * 2**30), "16Gi", id="binary-memory"),
        pytest.param("gpu", Decimal("0.0001"), "0.0001", id="tiny-fraction"),
    ],
)
def test_amounts_read_as_people_write_them(resource: str, value: Decimal, text: str) -> None:
    assert amount(resource, value) == text


def test_cluster_queue_usage_shows_used_nominal_borrowed_and_pending() -> None:
    snap = (
        world(
            make_cq("a").cohort("c").nominal(cpu=8, gpu=4),
            make_cq("b").cohort("c").nominal(cpu=8, gpu=4),
        )
        .running(make_wl("r").pods(4, cpu=1, gpu=1))
        .waiting(make_wl("w").pods(1, cpu=1, gpu=1), make_wl("big").pods(2, cpu=1, gpu=4))
        .build()
    )
    usage = run(snap).usage["a"]
    assert usage.text == "cpu 5/8 gpu 5/4 (borrowed gpu 1)"
    assert (usage.pending_workloads, usage.admitted_workloads) == (1, 2)
    assert usage.pending == {"cpu": 2, "gpu": 8}
    gpu = next(line for line in usage.lines if line.resource == "gpu")
    assert (gpu.nominal, gpu.used, gpu.borrowed) == (4, 5, 1)
