"""The event recorder: one Event per (object, reason, message), repeats folded into count."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from cnai.core.events import EVENTS, EventRecorder
from cnai.core.kinds import Event, EventType, Namespace
from cnai.core.store.sqlite import SQLiteStore

from .builders import T0, FakeClock, iso, make_namespace, make_widget

pytestmark = pytest.mark.anyio


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


@pytest.fixture
async def pod(store: SQLiteStore) -> dict[str, Any]:
    return await store.create("pods", make_widget("trainer-0", "team-a").kind("Pod").build())


async def test_first_record_creates_an_event_with_count_one(
    store: SQLiteStore, clock: FakeClock, pod: dict[str, Any]
) -> None:
    recorder = EventRecorder(store, "scheduler", clock=clock)
    created = await recorder.record(pod, EventType.NORMAL, "Admitted", "admitted by queue q")
    event = Event.model_validate(created)
    assert event.count == 1
    assert event.first_timestamp == event.last_timestamp == T0
    assert event.metadata.namespace == "team-a"
    assert event.metadata.name.startswith("trainer-0.")
    assert (event.reason, event.message, event.type) == (
        "Admitted",
        "admitted by queue q",
        EventType.NORMAL,
    )
    assert event.source.component == "scheduler"
    ref = event.involved_object
    assert (ref.kind, ref.name, ref.namespace, ref.uid) == (
        "Pod",
        "trainer-0",
        "team-a",
        pod["metadata"]["uid"],
    )


async def test_repeat_increments_count_and_last_timestamp(
    store: SQLiteStore, clock: FakeClock, pod: dict[str, Any]
) -> None:
    recorder = EventRecorder(store, "scheduler", clock=clock)
    await recorder.record(pod, EventType.WARNING, "BackOff", "restarting")
    clock.advance(90)
    await recorder.record(pod, EventType.WARNING, "BackOff", "restarting")
    clock.advance(30)
    third = await recorder.record(pod, EventType.WARNING, "BackOff", "restarting")
    (only,) = (await store.list(EVENTS, "team-a")).items
    assert only == third
    assert only["count"] == 3
    assert only["lastTimestamp"] == iso(clock())
    assert ts(only["firstTimestamp"]) == T0


@pytest.mark.parametrize(
    ("reason", "message", "type"),
    [
        pytest.param("Preempted", "restarting", EventType.WARNING, id="different-reason"),
        pytest.param("BackOff", "other message", EventType.WARNING, id="different-message"),
        pytest.param("BackOff", "restarting", EventType.NORMAL, id="different-type"),
    ],
)
async def test_different_event_creates_another(
    store: SQLiteStore,
    clock: FakeClock,
    pod: dict[str, Any],
    reason: str,
    message: str,
    type: EventType,
) -> None:
    recorder = EventRecorder(store, "scheduler", clock=clock)
    await recorder.record(pod, EventType.WARNING, "BackOff", "restarting")
    await recorder.record(pod, type, reason, message)
    events = (await store.list(EVENTS, "team-a")).items
    assert len(events) == 2
    assert [e["count"] for e in events] == [1, 1]


async def test_objects_of_the_same_name_with_different_uids_get_separate_events(
    store: SQLiteStore, clock: FakeClock, pod: dict[str, Any]
) -> None:
    recorder = EventRecorder(store, "scheduler", clock=clock)
    await recorder.record(pod, EventType.NORMAL, "Started", "")
    await store.delete("pods", "team-a", "trainer-0")
    reborn = await store.create("pods", make_widget("trainer-0", "team-a").kind("Pod").build())
    await recorder.record(reborn, EventType.NORMAL, "Started", "")
    assert len((await store.list(EVENTS, "team-a")).items) == 2


async def test_typed_resources_and_cluster_scoped_objects_are_recorded_in_default(
    store: SQLiteStore, clock: FakeClock
) -> None:
    ns = Namespace.model_validate(
        await store.create("namespaces", make_namespace("team-a").build())
    )
    recorder = EventRecorder(store, "namespace-controller", clock=clock)
    created = await recorder.record(ns, EventType.NORMAL, "Created", "namespace ready")
    assert created["metadata"]["namespace"] == "default"
    assert created["involvedObject"]["kind"] == "Namespace"
    assert created["involvedObject"]["uid"] == ns.metadata.uid
