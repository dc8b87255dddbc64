"""SQLiteStore.watch: initial state, resuming from a version, filters, compaction, overflow."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from cnai.core.errors import Gone
from cnai.core.selectors import FieldSelector, LabelSelector
from cnai.core.store.protocol import WatchEvent, WatchEventType
from cnai.core.store.sqlite import SQLiteStore

from ..builders import FakeClock, make_widget

pytestmark = pytest.mark.anyio

W = "widgets"
ADDED, MODIFIED, DELETED = WatchEventType.ADDED, WatchEventType.MODIFIED, WatchEventType.DELETED


async def take(watch: AsyncIterator[WatchEvent], n: int) -> list[WatchEvent]:
    return [await anext(watch) for _ in range(n)]


def summary(events: list[WatchEvent]) -> list[tuple[str, str]]:
    return [(e.type.value, e.object["metadata"]["name"]) for e in events]


@pytest.mark.parametrize(
    "start", [pytest.param(None, id="from-none"), pytest.param("0", id="from-zero")]
)
async def test_watch_from_the_start_sends_current_objects_then_live_events(
    store: SQLiteStore, start: str | None
) -> None:
    await store.create(W, make_widget("a").build())
    await store.create(W, make_widget("b").build())
    await store.update(W, make_widget("a").spec(size=2).build())  # a is now newest
    await store.create(W, make_widget("c").build())
    await store.delete(W, "default", "c")
    watch = store.watch(W, resource_version=start)
    initial = await take(watch, 2)
    assert summary(initial) == [("ADDED", "b"), ("ADDED", "a")]
    assert initial[1].object["spec"] == {"size": 2}  # current state, not history
    await store.create(W, make_widget("live").build())
    assert summary(await take(watch, 1)) == [("ADDED", "live")]
    await watch.aclose()


async def test_watch_from_a_version_replays_exactly_the_later_changes(store: SQLiteStore) -> None:
    await store.create(W, make_widget("a").build())
    start = store.current_resource_version()
    await store.update(W, make_widget("a").spec(size=1).build())
    await store.create(W, make_widget("b").build())
    await store.delete(W, "default", "a")
    watch = store.watch(W, resource_version=start)
    await store.create(W, make_widget("c").build())  # live, after the watch opened
    events = await take(watch, 4)
    await watch.aclose()
    assert summary(events) == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a"), ("ADDED", "c")]
    versions = [e.resource_version for e in events]
    assert versions == list(range(int(start) + 1, int(start) + 5))
    assert all(int(e.object["metadata"]["resourceVersion"]) == e.resource_version for e in events)


async def test_resumed_watch_has_no_gaps_or_duplicates_under_concurrent_writes(
    store: SQLiteStore,
) -> None:
    for i in range(10):
        await store.create(W, make_widget(f"w{i}").build())
    start = int(store.current_resource_version())
    for i in range(10):
        await store.update(W, make_widget(f"w{i}").spec(round=1).build())
    watch = store.watch(W, resource_version=str(start))
    seen: list[int] = []

    async def writer() -> None:
        for i in range(10):
            await store.update(W, make_widget(f"w{i}").spec(round=2).build())
            await anyio.lowlevel.checkpoint()  # let the reader run between writes
            await store.create(W, make_widget(f"x{i}").build())

    async def reader() -> None:
        async for ev in watch:
            seen.append(ev.resource_version)
            if len(seen) == 30:
                break

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
    await watch.aclose()
    assert seen == list(range(start + 1, start + 31))


async def test_watch_filters_by_namespace_and_selectors(store: SQLiteStore) -> None:
    await store.create(W, make_widget("old-web", "team-a").labels(app="web").build())
    await store.create(W, make_widget("old-db", "team-a").labels(app="db").build())
    by_ns = store.watch(W, "team-b")
    by_label = store.watch(W, label_selector=LabelSelector.parse("app=web"))
    by_field = store.watch(W, field_selector=FieldSelector.parse("metadata.name=new-db"))
    await store.create(W, make_widget("new-web", "team-b").labels(app="web").build())
    await store.create(W, make_widget("new-db", "team-b").labels(app="db").build())
    assert summary(await take(by_ns, 2)) == [("ADDED", "new-web"), ("ADDED", "new-db")]
    assert summary(await take(by_label, 2)) == [("ADDED", "old-web"), ("ADDED", "new-web")]
    assert summary(await take(by_field, 1)) == [("ADDED", "new-db")]
    for w in (by_ns, by_label, by_field):
        await w.aclose()


async def test_resumed_watch_filters_history_by_namespace(store: SQLiteStore) -> None:
    await store.create(W, make_widget("a", "team-a").build())
    await store.create(W, make_widget("b", "team-b").build())
    await store.create(W, make_widget("c", "team-a").build())
    watch = store.watch(W, "team-a", resource_version="1")
    assert summary(await take(watch, 1)) == [("ADDED", "c")]
    await watch.aclose()


async def test_closing_a_watch_unsubscribes_it(store: SQLiteStore) -> None:
    watch = store.watch(W)
    await store.create(W, make_widget("a").build())
    await anext(watch)
    assert len(store.broadcaster.subscribers) == 1
    await watch.aclose()
    assert store.broadcaster.subscribers == set()


async def test_closing_an_unread_watch_unsubscribes_it(store: SQLiteStore) -> None:
    watch = store.watch(W)
    await watch.aclose()
    assert store.broadcaster.subscribers == set()


async def test_dropping_an_unread_watch_unsubscribes_it(store: SQLiteStore) -> None:
    watch = store.watch(W)
    assert len(store.broadcaster.subscribers) == 1
    del watch
    gc.collect()
    assert store.broadcaster.subscribers == set()


@pytest.mark.parametrize(
    "version",
    [pytest.param("not-a-number", id="garbage-version"), pytest.param("-5", id="negative")],
)
async def test_invalid_version_is_gone_and_leaves_no_subscriber(
    store: SQLiteStore, version: str
) -> None:
    await store.create(W, make_widget("a").build())
    with pytest.raises(Gone):
        store.watch(W, resource_version=version)
    assert store.broadcaster.subscribers == set()


async def test_compaction_expires_old_versions_but_keeps_recent_ones(
    db_path: Path, clock: FakeClock
) -> None:
    store = SQLiteStore(db_path, clock=clock, watch_history=10)
    try:
        await store.create(W, make_widget("w").build())
        for i in range(999):  # compaction runs once every 1000 writes: at this last one
            await store.update(W, make_widget("w").spec(i=i).build())
        head = int(store.current_resource_version())
        with pytest.raises(Gone, match="too old"):
            store.watch(W, resource_version="5")
        with pytest.raises(Gone):
            store.watch(W, resource_version=str(head - 11))
        watch = store.watch(W, resource_version=str(head - 10))
        events = await take(watch, 10)
        await watch.aclose()
        assert [e.resource_version for e in events] == list(range(head - 9, head + 1))
    finally:
        await store.close()

    reopened = SQLiteStore(db_path, clock=clock, watch_history=10)
    try:
        with pytest.raises(Gone):
            reopened.watch(W, resource_version="5")
        watch = reopened.watch(W, resource_version=str(head - 1))
        assert [e.resource_version for e in await take(watch, 1)] == [head]
        await watch.aclose()
    finally:
        await reopened.close()


async def test_slow_watcher_gets_an_error_event_and_the_stream_ends(store: SQLiteStore) -> None:
    store.broadcaster.max_queue = 3
    slow = store.watch(W, resource_version=store.current_resource_version())
    for i in range(6):
        await store.create(W, make_widget(f"w{i}").build())
    events = [ev async for ev in slow]
    assert [e.type for e in events] == [ADDED, ADDED, ADDED, WatchEventType.ERROR]
    assert events[-1].object["code"] == 410
    assert store.broadcaster.subscribers == set()


async def test_closing_the_store_ends_open_watches(db_path: Path, clock: FakeClock) -> None:
    store = SQLiteStore(db_path, clock=clock)
    watch = store.watch(W)
    await store.create(W, make_widget("a").build())
    await store.close()
    assert summary([ev async for ev in watch]) == [("ADDED", "a")]
