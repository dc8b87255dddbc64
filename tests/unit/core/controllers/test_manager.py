"""Manager: sources wake the right keys, failures retry with backoff, graceful stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import CollectorRegistry

from cnai.core.clock import FakeClock
from cnai.core.controllers import ControllerSpec, Manager, Request, Result
from cnai.core.store.protocol import Obj
from cnai.core.store.sqlite import SQLiteStore

from ..builders import make_obj
from .helpers import eventually, gadget, make_registry, widget

pytestmark = pytest.mark.anyio

W, G = "widgets", "gadgets"
MARKER = "SECRET-BODY-MARKER-7731"


def req(name: str, namespace: str | None = "default") -> Request:
    return Request(namespace, name)


class Recording:
    """A reconciler that records each request and runs an optional behaviour."""

    def __init__(self, behave: Callable[[Request, int], Result] | None = None) -> None:
        self.calls: list[Request] = []
        self.behave = behave

    async def reconcile(self, request: Request) -> Result:
        self.calls.append(request)
        if self.behave is not None:
            return self.behave(request, self.calls.count(request))
        return Result()

    def seen(self, request: Request) -> bool:
        return request in self.calls


@pytest.fixture
async def manager(store: SQLiteStore) -> AsyncIterator[Manager]:
    m = Manager(
        store,
        make_registry(),
        FakeClock(),
        retry_base=0.001,
        retry_cap=0.02,
        relist_base=0.001,
        relist_cap=0.01,
        stop_timeout=5,
    )
    yield m
    await m.stop()


async def test_reconciles_existing_objects_at_start_then_changes(
    store: SQLiteStore, manager: Manager
) -> None:
    await store.create(W, widget("a"))
    await store.create(W, widget("b", "team"))
    rec = Recording()
    manager.add(ControllerSpec("widgets", W, rec))
    await manager.start()
    await eventually(lambda: rec.seen(req("a")) and rec.seen(req("b", "team")), "start")

    await store.create(W, widget("c"))
    await eventually(lambda: rec.seen(req("c")), "create")
    obj = await store.get(W, "default", "a")
    obj["spec"]["size"] = 5
    await store.update(W, obj)
    await eventually(lambda: rec.calls.count(req("a")) == 2, "update")
    await store.delete(W, "team", "b")
    await eventually(lambda: rec.calls.count(req("b", "team")) == 2, "delete")


async def test_first_reconcile_sees_a_full_cache(store: SQLiteStore, manager: Manager) -> None:
    for name in ("a", "b", "c"):
        await store.create(W, widget(name))
    sizes: list[int] = []

    class Counting:
        async def reconcile(self, request: Request) -> Result:
            sizes.append(len(manager.informer(W).list()))
            return Result()

    manager.add(ControllerSpec("widgets", W, Counting()))
    await manager.start()
    await eventually(lambda: len(sizes) == 3, "three reconciles")
    assert sizes == [3, 3, 3]


async def test_an_owned_objects_change_wakes_its_controlling_owner(
    store: SQLiteStore, manager: Manager
) -> None:
    rec = Recording()
    manager.add(ControllerSpec("widgets", W, rec, owns=(G,)))
    await manager.start()

    await store.create(G, gadget("g1", owner="w1"))
    await eventually(lambda: rec.seen(req("w1")), "owner of g1")
    # Neither a non-controller reference nor another kind's reference wakes anyone; the
    # sentinel after them proves their events were handled already.
    await store.create(G, gadget("g2", owner="not-controller", controller=False))
    await store.create(G, gadget("g3", owner="other-kind", kind="Job"))
    await store.create(G, gadget("g4", owner="sentinel"))
    await eventually(lambda: rec.seen(req("sentinel")), "sentinel")
    assert not rec.seen(req("not-controller"))
    assert not rec.seen(req("other-kind"))
    assert not any(r.name.startswith("g") for r in rec.calls)  # gadgets are not keys

    n = rec.calls.count(req("w1"))
    await store.delete(G, "default", "g1")
    await eventually(lambda: rec.calls.count(req("w1")) > n, "owner after delete")


async def test_owner_of_a_cluster_scoped_kind_is_keyed_without_namespace(
    store: SQLiteStore, manager: Manager
) -> None:
    rec = Recording()
    manager.add(ControllerSpec("clusters", "clusters", rec, owns=(G,)))
    await manager.start()
    await store.create(G, gadget("g", owner="c1", kind="Cluster", namespace="team"))
    await eventually(lambda: rec.seen(Request(None, "c1")), "cluster owner")


async def test_a_watch_mapper_enqueues_what_it_returns(
    store: SQLiteStore, manager: Manager
) -> None:
    def by_label(obj: Obj) -> list[Request]:
        target = (obj["metadata"].get("labels") or {}).get("widget")
        return [Request(obj["metadata"]["namespace"], target)] if target else []

    rec = Recording()
    manager.add(ControllerSpec("widgets", W, rec, watches=((G, by_label),)))
    await manager.start()
    await store.create(G, make_obj("Gadget", "g", "default").labels(widget="w9").build())
    await eventually(lambda: rec.seen(req("w9")), "mapped key")


async def test_a_source_enqueues_through_the_function_it_is_given(
    store: SQLiteStore, manager: Manager
) -> None:
    wake: list[Callable[[Request], None]] = []
    rec = Recording()
    manager.add(ControllerSpec("widgets", W, rec, sources=(wake.append,)))
    await manager.start()
    assert len(wake) == 1  # called once, when the controller was added
    wake[0](req("from-outside"))
    await eventually(lambda: rec.seen(req("from-outside")), "key from a source")


async def test_informers_are_shared_per_plural(store: SQLiteStore, manager: Manager) -> None:
    one, two = Recording(), Recording()
    manager.add(ControllerSpec("one", W, one, owns=(G,)))
    manager.add(ControllerSpec("two", G, two))
    assert manager.informer(W) is manager.informer(W)
    await manager.start()
    await store.create(G, gadget("g", owner="w"))
    await eventually(lambda: one.seen(req("w")) and two.seen(req("g")), "both controllers")
    # An informer asked for after start runs too, for cached reads.
    await store.create("clusters", make_obj("Cluster", "c", None).build())
    late = manager.informer("clusters")
    await asyncio.wait_for(late.wait_synced(), 5)
    assert late.get(None, "c") is not None


async def test_a_failing_reconcile_backs_off_and_succeeds_while_others_work(
    store: SQLiteStore, manager: Manager, caplog: pytest.LogCaptureFixture
) -> None:
    def flaky(request: Request, attempt: int) -> Result:
        if attempt <= 3:
            raise RuntimeError("transient failure")
        return Result()

    failing, healthy = Recording(flaky), Recording()
    manager.add(ControllerSpec("flaky", W, failing))
    manager.add(ControllerSpec("healthy", G, healthy))
    secret = make_obj("Widget", "s", "default").spec(password=MARKER).build()
    await store.create(W, secret)
    with caplog.at_level(logging.ERROR):
        await manager.start()
        await store.create(G, gadget("g1"))
        await eventually(lambda: healthy.seen(req("g1")), "healthy controller")
        await eventually(lambda: failing.calls.count(req("s")) == 4, "fourth attempt")
    assert manager.queue("flaky").num_requeues(req("s")) == 0  # forgotten on success
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert all("flaky" in r.getMessage() and "default/s" in r.getMessage() for r in errors)
    assert MARKER not in caplog.text
    # The key is not retried once it succeeded, and the controller keeps working.
    await store.create(W, widget("w2"))
    await eventually(lambda: failing.seen(req("w2")), "next key")


async def test_requeue_after_runs_the_key_again(store: SQLiteStore, manager: Manager) -> None:
    def twice(request: Request, attempt: int) -> Result:
        return Result(requeue_after=0.01 if attempt < 3 else None)

    rec = Recording(twice)
    manager.add(ControllerSpec("widgets", W, rec))
    await store.create(W, widget("a"))
    await manager.start()
    await eventually(lambda: rec.calls.count(req("a")) == 3, "three runs")
    assert manager.queue("widgets").delayed() == 0


async def test_stop_waits_for_an_in_flight_reconcile(store: SQLiteStore) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    finished: list[Request] = []

    class Slow:
        async def reconcile(self, request: Request) -> Result:
            entered.set()
            await release.wait()
            finished.append(request)
            return Result()

    manager = Manager(store, make_registry(), FakeClock())
    manager.add(ControllerSpec("slow", W, Slow()))
    await store.create(W, widget("a"))
    await store.create(W, widget("b"))
    await manager.start()
    await asyncio.wait_for(entered.wait(), 5)

    stopping = asyncio.create_task(manager.stop(timeout=5))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not stopping.done()  # held by the in-flight reconcile
    release.set()
    await asyncio.wait_for(stopping, 5)
    assert finished == [req("a")]  # "b" was not started after stop began


async def test_stop_cancels_a_reconcile_that_outlives_the_timeout(store: SQLiteStore) -> None:
    cancelled = asyncio.Event()

    class Stuck:
        async def reconcile(self, request: Request) -> Result:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return Result()

    manager = Manager(store, make_registry(), FakeClock())
    manager.add(ControllerSpec("stuck", W, Stuck()))
    await store.create(W, widget("a"))
    await manager.start()
    await eventually(lambda: len(manager.queue("stuck")) == 0, "key taken")
    await asyncio.wait_for(manager.stop(timeout=0.01), 5)
    assert cancelled.is_set()


async def test_run_as_a_task_and_the_store_closing_under_it_is_quiet(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recording()
    manager = Manager(store, make_registry(), FakeClock(), relist_base=0.001, relist_cap=0.01)
    manager.add(ControllerSpec("widgets", W, rec, owns=(G,)))
    await store.create(W, widget("a"))
    with caplog.at_level(logging.WARNING):
        task = asyncio.create_task(manager.run())
        await eventually(lambda: rec.seen(req("a")), "first reconcile")
        await store.close()
        await eventually(
            lambda: any("list/watch failed" in r.getMessage() for r in caplog.records),
            "the informers to notice",
        )
        await asyncio.wait_for(manager.stop(timeout=1), 5)
        await asyncio.wait_for(task, 5)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


async def test_cancelling_run_stops_the_manager(store: SQLiteStore) -> None:
    rec = Recording()
    manager = Manager(store, make_registry(), FakeClock())
    manager.add(ControllerSpec("widgets", W, rec))
    await store.create(W, widget("a"))
    task = asyncio.create_task(manager.run())
    await eventually(lambda: rec.seen(req("a")), "first reconcile")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert manager.queue("widgets").shutting_down


async def test_workers_share_keys_but_never_hold_one_key_twice(
    store: SQLiteStore, manager: Manager
) -> None:
    active: dict[Request, int] = {}
    overlap: list[Request] = []
    most = 0
    done: list[Request] = []

    class Busy:
        async def reconcile(self, request: Request) -> Result:
            nonlocal most
            active[request] = active.get(request, 0) + 1
            if active[request] > 1:
                overlap.append(request)
            most = max(most, sum(active.values()))
            await asyncio.sleep(0.005)
            active[request] -= 1
            done.append(request)
            return Result()

    manager.add(ControllerSpec("busy", W, Busy(), workers=3))
    await manager.start()
    for i in range(6):
        await store.create(W, widget(f"w{i}"))
    for _ in range(3):  # keep touching w0 while it is being reconciled
        obj = await store.get(W, "default", "w0")
        obj["spec"]["size"] += 1
        await store.update(W, obj)
    await eventually(lambda: {r.name for r in done} >= {f"w{i}" for i in range(6)}, "all")
    assert not overlap
    assert most > 1  # the workers did run side by side


async def test_add_after_start_is_refused(store: SQLiteStore, manager: Manager) -> None:
    manager.add(ControllerSpec("a", W, Recording()))
    await manager.start()
    with pytest.raises(RuntimeError, match="before start"):
        manager.add(ControllerSpec("b", G, Recording()))


def test_add_rejects_duplicates_unknown_owner_kinds_and_bad_workers() -> None:
    manager = Manager(None, make_registry(), FakeClock())  # type: ignore[arg-type]
    manager.add(ControllerSpec("a", W, Recording()))
    with pytest.raises(ValueError, match="already added"):
        manager.add(ControllerSpec("a", W, Recording()))
    with pytest.raises(ValueError, match="not registered"):
        manager.add(ControllerSpec("b", "nothings", Recording(), owns=(G,)))
    with pytest.raises(ValueError, match="workers"):
        manager.add(ControllerSpec("c", W, Recording(), workers=0))


async def test_stop_during_start_ends_a_start_that_cannot_sync() -> None:
    class Broken:
        """A store whose list always fails, so no informer ever syncs."""

        lists = 0

        async def list(self, *args: object, **kwargs: object) -> None:
            self.lists += 1
            raise RuntimeError("unavailable")

    broken = Broken()
    manager = Manager(broken, make_registry(), FakeClock(), relist_base=0.001)  # type: ignore[arg-type]
    rec = Recording()
    manager.add(ControllerSpec("widgets", W, rec))
    starting = asyncio.create_task(manager.start())
    await eventually(lambda: broken.lists >= 2, "the informer retrying")
    assert not starting.done()
    await asyncio.wait_for(manager.stop(timeout=1), 5)
    await asyncio.wait_for(starting, 5)
    assert rec.calls == []


async def test_reconciles_are_counted_by_outcome_and_the_queue_depth_is_read(
    store: SQLiteStore,
) -> None:
    registry = CollectorRegistry()
    manager = Manager(
        store, make_registry(), FakeClock(), retry_base=0.001, retry_cap=0.01, metrics=registry
    )

    def outcomes(request: Request, attempt: int) -> Result:
        if request.name != "a":
            return Result()
        if attempt <= 2:
            raise RuntimeError("transient failure")
        return Result(requeue_after=0.01 if attempt == 3 else None)

    rec = Recording(outcomes)
    manager.add(ControllerSpec("widgets", W, rec))

    def count(result: str) -> float | None:
        return registry.get_sample_value(
            "cnai_controller_reconcile_total", {"controller": "widgets", "result": result}
        )

    # Every series exists from the start, at 0, so that rates work from the first scrape.
    assert (count("success"), count("requeue_after"), count("error")) == (0, 0, 0)
    depth = {"controller": "widgets"}
    assert registry.get_sample_value("cnai_controller_workqueue_depth", depth) == 0
    manager.queue("widgets").add(req("queued"))
    assert registry.get_sample_value("cnai_controller_workqueue_depth", depth) == 1
    await store.create(W, widget("a"))
    try:
        await manager.start()
        await eventually(lambda: rec.calls.count(req("a")) == 4, "four runs")
        await eventually(lambda: count("success") == 2, "a and queued succeeded")
    finally:
        await manager.stop()
    assert (count("error"), count("requeue_after")) == (2, 1)
    seconds = registry.get_sample_value(
        "cnai_controller_reconcile_duration_seconds_count", {"controller": "widgets"}
    )
    assert seconds == 5
