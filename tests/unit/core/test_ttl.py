"""TTL clean-up: old Events go; finished, unowned, old Pods go when a pod TTL is set.

Ages come from a fake clock that the tests move; the store is real.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import anyio
import pytest

from cnai.core.clock import FakeClock
from cnai.core.gc import GarbageCollector
from cnai.core.registry import Registry
from cnai.core.store.sqlite import SQLiteStore
from cnai.core.ttl import TTLSweeper, event_expired, parse_time, pod_expired

from .builders import T0, iso, make_event, make_pod, make_secret

pytestmark = pytest.mark.anyio

HOUR = 3600.0


def ago(seconds: float) -> str:
    return iso(T0 - timedelta(seconds=seconds))


async def names(store: SQLiteStore, resource: str) -> set[str]:
    return {o["metadata"]["name"] for o in (await store.list(resource)).items}


async def test_events_older_than_the_ttl_are_deleted(store: SQLiteStore) -> None:
    clock = FakeClock(T0)
    await store.create("events", make_event("old").field("lastTimestamp", ago(2 * HOUR)).build())
    await store.create("events", make_event("fresh").field("lastTimestamp", ago(HOUR / 2)).build())
    # An event first seen long ago but seen again lately is still fresh.
    await store.create(
        "events",
        make_event("repeated")
        .field("firstTimestamp", ago(5 * HOUR))
        .field("lastTimestamp", ago(60))
        .build(),
    )
    await store.create(
        "events", make_event("old", "team-a").field("lastTimestamp", ago(HOUR + 1)).build()
    )
    sweeper = TTLSweeper(store, clock, event_ttl=HOUR)

    assert await sweeper.sweep_once() == 2
    assert {
        (e["metadata"]["namespace"], e["metadata"]["name"])
        for e in (await store.list("events")).items
    } == {
        ("default", "fresh"),
        ("default", "repeated"),
    }
    clock.advance(HOUR * 3 / 4)
    assert await sweeper.sweep_once() == 1
    assert await names(store, "events") == {"repeated"}


async def test_no_event_ttl_keeps_every_event(store: SQLiteStore) -> None:
    await store.create("events", make_event("old").field("lastTimestamp", ago(100 * HOUR)).build())
    assert await TTLSweeper(store, FakeClock(T0), event_ttl=None).sweep_once() == 0
    assert await names(store, "events") == {"old"}


async def test_finished_unowned_old_pods_are_deleted_and_no_others(store: SQLiteStore) -> None:
    owner = await store.create("secrets", make_secret("owner").build())
    pods = {
        "done-old": make_pod("done-old").status(phase="Succeeded", finishTime=ago(2 * HOUR)),
        "failed-old": make_pod("failed-old").status(phase="Failed", finishTime=ago(2 * HOUR)),
        "done-recent": make_pod("done-recent").status(phase="Succeeded", finishTime=ago(60)),
        "running": make_pod("running").status(phase="Running", startTime=ago(9 * HOUR)),
        "owned-old": make_pod("owned-old")
        .owned_by(owner)
        .status(phase="Succeeded", finishTime=ago(2 * HOUR)),
        "no-finish-time": make_pod("no-finish-time").status(phase="Failed"),
    }
    for builder in pods.values():
        await store.create("pods", builder.build())

    assert await TTLSweeper(store, FakeClock(T0), pod_ttl=None).sweep_once() == 0
    assert await TTLSweeper(store, FakeClock(T0), pod_ttl=HOUR).sweep_once() == 2
    assert await names(store, "pods") == {"done-recent", "running", "owned-old", "no-finish-time"}


async def test_a_pod_with_a_finalizer_is_marked_once(store: SQLiteStore) -> None:
    held = make_pod("held").finalizers("x/y").status(phase="Succeeded", finishTime=ago(2 * HOUR))
    await store.create("pods", held.build())
    sweeper = TTLSweeper(store, FakeClock(T0), pod_ttl=HOUR)
    assert await sweeper.sweep_once() == 1
    assert (await store.get("pods", "default", "held"))["metadata"]["deletionTimestamp"]
    assert await sweeper.sweep_once() == 0  # already being deleted: left to its finalizer


async def test_the_collector_sweeps_on_its_interval(registry: Registry, store: SQLiteStore) -> None:
    clock = FakeClock(T0)
    gc = GarbageCollector(registry, store, clock, event_ttl=HOUR, ttl_interval=0.01)
    task = asyncio.create_task(gc.run())
    try:
        await store.create("events", make_event("e").field("lastTimestamp", iso(T0)).build())
        clock.advance(2 * HOUR)
        with anyio.fail_after(10):
            while await names(store, "events"):
                await anyio.sleep(0.005)
    finally:
        task.cancel()
        await gc.stop()


@pytest.mark.parametrize(
    ("event", "expired"),
    [
        pytest.param({"lastTimestamp": ago(2 * HOUR)}, True, id="last-seen-long-ago"),
        pytest.param({"lastTimestamp": ago(10)}, False, id="last-seen-lately"),
        pytest.param({"firstTimestamp": ago(2 * HOUR)}, True, id="only-first-timestamp"),
        pytest.param(
            {"metadata": {"creationTimestamp": ago(2 * HOUR)}}, True, id="only-creation-time"
        ),
        pytest.param({"lastTimestamp": "not a time"}, False, id="unreadable-time-is-kept"),
        pytest.param({}, False, id="no-time-at-all-is-kept"),
    ],
)
def test_event_expired(event: dict[str, object], expired: bool) -> None:
    assert event_expired(event, T0, timedelta(hours=1)) is expired


def test_pod_expired_needs_a_terminal_phase_and_no_owner() -> None:
    done = {"status": {"phase": "Succeeded", "finishTime": ago(2 * HOUR)}}
    assert pod_expired(done, T0, timedelta(hours=1))
    assert not pod_expired(
        {**done, "metadata": {"ownerReferences": [{"uid": "u"}]}}, T0, timedelta(hours=1)
    )
    assert not pod_expired(
        {"status": {"phase": "Unknown", "finishTime": ago(2 * HOUR)}}, T0, timedelta(hours=1)
    )


def test_parse_time_wants_an_aware_timestamp() -> None:
    assert parse_time("2024-01-02T03:04:05Z") == T0
    assert parse_time("2024-01-02T03:04:05") is None
    assert parse_time(None) is None
