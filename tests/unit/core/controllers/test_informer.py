"""Informer: initial list, live changes, re-list with a diff after Gone, errors, stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cnai.core.controllers.backoff import Backoff
from cnai.core.controllers.informer import Informer
from cnai.core.errors import Gone
from cnai.core.store.protocol import Obj, ObjectList, WatchEvent, WatchEventType
from cnai.core.store.sqlite import SQLiteStore

from .helpers import Recorder, eventually, widget

pytestmark = pytest.mark.anyio

W = "widgets"
FAST = Backoff(0.001, 0.01)


class ScriptedStore:
    """A real store whose next lists/watches can be scripted to fail or be stale.

    Each entry of ``lists``/``watches`` replaces one call: an ObjectList to return, an
    exception to raise, or a list of watch events to yield before the stream ends.
    """

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store
        self.lists: list[ObjectList | Exception] = []
        self.watches: list[Exception | list[WatchEvent]] = []
        self.list_calls = 0
        self.watch_calls = 0

    async def list(self, resource: str, *args: Any, **kwargs: Any) -> ObjectList:
        self.list_calls += 1
        if self.lists:
            step = self.lists.pop(0)
            if isinstance(step, Exception):
                raise step
            return step
        return await self.store.list(resource, *args, **kwargs)

    def watch(self, resource: str, *args: Any, **kwargs: Any) -> AsyncIterator[WatchEvent]:
        self.watch_calls += 1
        if self.watches:
            step = self.watches.pop(0)
            if isinstance(step, Exception):
                raise step
            return _yield(step)
        return self.store.watch(resource, *args, **kwargs)


async def _yield(events: list[WatchEvent]) -> AsyncIterator[WatchEvent]:
    for ev in events:
        yield ev


async def running(informer: Informer) -> asyncio.Task[None]:
    task = asyncio.create_task(informer.run())
    await asyncio.wait_for(informer.wait_synced(), 5)
    return task


async def stop(informer: Informer, task: asyncio.Task[None]) -> None:
    informer.stop()
    await asyncio.wait_for(task, 5)  # returns normally, no CancelledError


def names(objs: list[Obj]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


async def test_initial_list_fills_the_cache_and_tells_handlers(store: SQLiteStore) -> None:
    await store.create(W, widget("a"))
    await store.create(W, widget("b", "other"))
    informer = Informer(store, W)
    rec = Recorder()
    informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    assert not informer.has_synced
    task = await running(informer)

    assert informer.has_synced
    assert sorted(rec.events) == [("add", "a"), ("add", "b")]
    assert names(informer.list()) == ["a", "b"]
    assert names(informer.list("other")) == ["b"]
    got = informer.get("default", "a")
    assert got is not None
    assert got["spec"] == {"size": 1}
    assert informer.get("default", "nope") is None
    await stop(informer, task)


async def test_live_changes_reach_cache_and_handlers(store: SQLiteStore) -> None:
    informer = Informer(store, W)
    rec = Recorder()
    informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    task = await running(informer)

    await store.create(W, widget("a", tier="gold"))
    await eventually(lambda: informer.get("default", "a") is not None, "a in cache")
    obj = await store.get(W, "default", "a")
    obj["spec"]["size"] = 2
    await store.update(W, obj)
    await eventually(lambda: (informer.get("default", "a") or {})["spec"]["size"] == 2)
    assert names(informer.list(label_selector="tier=gold")) == ["a"]
    assert informer.list(label_selector="tier=silver") == []
    await store.delete(W, "default", "a")
    await eventually(lambda: informer.get("default", "a") is None, "a gone from cache")

    assert rec.events == [("add", "a"), ("update", "a"), ("delete", "a")]
    assert informer.resource_version == store.current_resource_version()
    await stop(informer, task)


async def test_cache_reads_are_copies(store: SQLiteStore) -> None:
    await store.create(W, widget("a"))
    informer = Informer(store, W)
    task = await running(informer)
    got = informer.get("default", "a")
    assert got is not None
    got["spec"]["size"] = 99
    informer.list()[0]["spec"]["size"] = 98
    assert (informer.get("default", "a") or {})["spec"]["size"] == 1
    await stop(informer, task)


async def test_uncopied_reads_are_the_cached_objects_replaced_on_change(
    store: SQLiteStore,
) -> None:
    await store.create(W, widget("a"))
    informer = Informer(store, W)
    task = await running(informer)
    before = informer.list(copy_objects=False)
    assert before == informer.list()
    assert before[0] is informer.list(copy_objects=False)[0]
    changed = {**before[0], "spec": {"size": 5}}
    await store.update(W, changed)
    await eventually(lambda: informer.list(copy_objects=False)[0]["spec"]["size"] == 5)
    assert before[0]["spec"]["size"] == 1  # the object handed out earlier is unchanged
    await stop(informer, task)


async def test_caught_up_waits_for_a_write_to_reach_the_cache(store: SQLiteStore) -> None:
    informer = Informer(store, W)
    task = await running(informer)
    written = await store.create(W, widget("a"))
    version = written["metadata"]["resourceVersion"]
    assert await informer.caught_up(version, timeout=5)
    assert informer.get("default", "a") is not None  # read-your-writes
    # A version the store has not reached: not caught up within the timeout.
    assert not await informer.caught_up(str(int(version) + 100), timeout=0.05)
    assert not await informer.caught_up("not-a-number", timeout=5)
    await stop(informer, task)


async def test_relist_after_gone_diffs_against_the_cache(store: SQLiteStore) -> None:
    # The informer's first list is a stale snapshot; meanwhile the store moved on and
    # its history was compacted, so the watch from that snapshot is Gone.
    for name in ("keep", "change", "remove"):
        await store.create(W, widget(name))
    stale = await store.list(W)
    obj = await store.get(W, "default", "change")
    obj["spec"]["size"] = 2
    await store.update(W, obj)
    await store.delete(W, "default", "remove")
    await store.create(W, widget("new"))

    scripted = ScriptedStore(store)
    scripted.lists = [stale]
    scripted.watches = [Gone("resourceVersion too old")]
    informer = Informer(scripted, W, backoff=FAST)  # type: ignore[arg-type]
    rec = Recorder()
    informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    task = await running(informer)
    await eventually(lambda: scripted.list_calls == 2, "a second list")

    assert sorted(rec.events[:3]) == [("add", "change"), ("add", "keep"), ("add", "remove")]
    assert sorted(rec.events[3:]) == [("add", "new"), ("delete", "remove"), ("update", "change")]
    assert names(informer.list()) == ["change", "keep", "new"]
    # And it watches again from the fresh list: live changes still arrive.
    await store.create(W, widget("later"))
    await eventually(lambda: ("add", "later") in rec.events, "the later add")
    await stop(informer, task)


async def test_a_410_error_event_mid_watch_relists(store: SQLiteStore) -> None:
    await store.create(W, widget("a"))
    expired = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too slow"}
    scripted = ScriptedStore(store)
    scripted.watches = [[WatchEvent(WatchEventType.ERROR, expired, W)]]
    informer = Informer(scripted, W, backoff=FAST)  # type: ignore[arg-type]
    rec = Recorder()
    informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    task = await running(informer)
    await eventually(lambda: scripted.watch_calls == 2, "a second watch")
    await store.delete(W, "default", "a")
    await eventually(lambda: ("delete", "a") in rec.events, "the delete")
    assert rec.events == [("add", "a"), ("delete", "a")]  # the re-list changed nothing
    await stop(informer, task)


async def test_a_recreated_object_is_a_delete_then_an_add(store: SQLiteStore) -> None:
    await store.create(W, widget("a"))
    stale = await store.list(W)
    await store.delete(W, "default", "a")
    await store.create(W, widget("a"))
    scripted = ScriptedStore(store)
    scripted.lists = [stale]
    scripted.watches = [Gone("compacted")]
    informer = Informer(scripted, W, backoff=FAST)  # type: ignore[arg-type]
    rec = Recorder()
    informer.add_handler(rec.on_add, rec.on_update, rec.on_delete)
    task = await running(informer)
    await eventually(lambda: len(rec.events) == 3, "three events")
    assert rec.events == [("add", "a"), ("delete", "a"), ("add", "a")]
    await stop(informer, task)


async def test_list_errors_are_retried_with_backoff(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    await store.create(W, widget("a"))
    scripted = ScriptedStore(store)
    scripted.lists = [RuntimeError("db busy"), RuntimeError("db busy")]
    informer = Informer(scripted, W, backoff=FAST)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING):
        task = await running(informer)
    assert scripted.list_calls == 3
    assert names(informer.list()) == ["a"]
    failures = [r for r in caplog.records if "list/watch failed" in r.getMessage()]
    assert len(failures) == 2
    assert all(r.exc_info is None for r in failures)  # no traceback noise
    await stop(informer, task)


async def test_a_failing_handler_does_not_stop_the_others(store: SQLiteStore) -> None:
    informer = Informer(store, W)

    def boom(obj: Obj) -> None:
        raise ValueError("handler bug")

    rec = Recorder()
    informer.add_handler(on_add=boom)
    informer.add_handler(rec.on_add)
    task = await running(informer)
    await store.create(W, widget("a"))
    await eventually(lambda: rec.events == [("add", "a")], "the add")
    assert informer.get("default", "a") is not None
    await stop(informer, task)


async def test_a_late_handler_hears_the_cache_as_adds(store: SQLiteStore) -> None:
    await store.create(W, widget("a"))
    informer = Informer(store, W)
    task = await running(informer)
    rec = Recorder()
    informer.add_handler(rec.on_add)
    assert rec.events == [("add", "a")]
    await stop(informer, task)


async def test_the_store_closing_ends_the_watch_quietly(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    informer = Informer(store, W, backoff=FAST)
    with caplog.at_level(logging.DEBUG, logger="cnai.core.controllers"):
        task = await running(informer)
        await store.close()
        await eventually(
            lambda: any("list/watch failed" in r.getMessage() for r in caplog.records),
            "a failed re-list",
        )
        await stop(informer, task)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_cancelling_the_run_task_raises_and_stop_before_run_returns(
    store: SQLiteStore,
) -> None:
    informer = Informer(store, W)
    task = await running(informer)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stopped = Informer(store, W)
    stopped.stop()
    await asyncio.wait_for(stopped.run(), 5)
    assert not stopped.has_synced
