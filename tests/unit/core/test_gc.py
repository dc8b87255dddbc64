"""The garbage collector against a real store: cascades, Foreground, Orphan, crash recovery.

Every test runs the collector's real loop (watches, queue, worker) over a SQLite store in
a temp dir, and waits for outcomes by polling with a deadline: nothing sleeps to wait
for time to pass, and no test measures how long anything took.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import pytest

from cnai.core.clock import FakeClock
from cnai.core.errors import NotFound
from cnai.core.gc import Action, GarbageCollector, Graph, Node, OwnerRef
from cnai.core.registry import Registry
from cnai.core.store.protocol import FOREGROUND_FINALIZER, Obj
from cnai.core.store.sqlite import SQLiteStore

from .builders import T0, make_namespace, make_secret

pytestmark = pytest.mark.anyio

S = "secrets"
HOLD = "test.cnai.io/hold"
DEADLINE_S = 10.0
MARKER = "GC-SECRET-VALUE-77"


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds; fail after a generous deadline."""
    with anyio.fail_after(DEADLINE_S):
        while not await check():
            await anyio.sleep(0.005)
    assert await check(), what


async def settle(gc: GarbageCollector) -> None:
    """Wait until the collector has nothing left to do (seen idle several times running)."""
    idle = 0
    with anyio.fail_after(DEADLINE_S):
        while idle < 5:
            idle = idle + 1 if gc.is_idle() else 0
            await anyio.sleep(0.005)


@asynccontextmanager
async def collecting(registry: Registry, store: SQLiteStore) -> AsyncIterator[GarbageCollector]:
    gc = GarbageCollector(registry, store, FakeClock(T0), retry_seconds=0.01, event_ttl=None)
    task = asyncio.create_task(gc.run())
    try:
        await settle(gc)
        yield gc
    finally:
        task.cancel()
        await gc.stop()


async def exists(store: SQLiteStore, name: str, namespace: str = "default") -> bool:
    try:
        await store.get(S, namespace, name)
    except NotFound:
        return False
    return True


def gone(store: SQLiteStore, *names: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return not any([await exists(store, n) for n in names])

    return check


async def secret(store: SQLiteStore, name: str, *owners: Obj, block: bool = False) -> Obj:
    builder = make_secret(name).data(k=MARKER)
    for owner in owners:
        builder.owned_by(owner, block=block)
    return await store.create(S, builder.build())


async def release(store: SQLiteStore, name: str) -> None:
    obj = await store.get(S, "default", name)
    obj["metadata"]["finalizers"] = [f for f in obj["metadata"]["finalizers"] if f != HOLD]
    await store.update(S, obj)


def owner_uids(obj: Obj) -> list[str]:
    return [r["uid"] for r in obj["metadata"].get("ownerReferences", [])]


# -- background ------------------------------------------------------------------------


async def test_background_delete_cascades_down_a_chain(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store):
        owner = await secret(store, "owner")
        child = await secret(store, "child", owner)
        await secret(store, "grandchild", child)
        await secret(store, "bystander")
        await store.delete(S, "default", "owner")
        await eventually(gone(store, "child", "grandchild"), "the chain is collected")
        assert await exists(store, "bystander")


async def test_a_dependent_with_another_live_owner_only_loses_the_reference(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store) as gc:
        a = await secret(store, "a")
        b = await secret(store, "b")
        await secret(store, "shared", a, b)
        await store.delete(S, "default", "a")

        async def unlinked() -> bool:
            return owner_uids(await store.get(S, "default", "shared")) == [b["metadata"]["uid"]]

        await eventually(unlinked, "the reference to the deleted owner is removed")
        await settle(gc)
        assert await exists(store, "shared")

        await store.delete(S, "default", "b")
        await eventually(gone(store, "shared"), "the last owner's deletion collects it")


async def test_a_recreated_owner_of_the_same_name_is_not_the_owner(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store):
        owner = await secret(store, "owner")
        await secret(store, "child", owner)
        # Delete and recreate at once: the child's reference names the old uid.
        await store.delete(S, "default", "owner")
        await secret(store, "owner")
        await eventually(gone(store, "child"), "the child of the old owner is collected")
        assert await exists(store, "owner")


async def test_a_dependent_with_a_finalizer_is_marked_and_kept_until_released(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store) as gc:
        owner = await secret(store, "owner")
        await store.create(S, make_secret("held").owned_by(owner).finalizers(HOLD).build())
        await store.delete(S, "default", "owner")

        async def marked() -> bool:
            return bool(
                (await store.get(S, "default", "held"))["metadata"].get("deletionTimestamp")
            )

        await eventually(marked, "the dependent is marked for deletion")
        await settle(gc)
        await release(store, "held")
        assert not await exists(store, "held")


# -- foreground ------------------------------------------------------------------------


async def test_foreground_keeps_the_owner_until_blocking_dependents_are_gone(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store) as gc:
        owner = await secret(store, "owner")
        await store.create(
            S, make_secret("blocker").owned_by(owner, block=True).finalizers(HOLD).build()
        )
        await secret(store, "loose", owner)  # does not block its owner
        marked = await store.delete(S, "default", "owner", propagation="Foreground")
        assert marked["metadata"]["deletionTimestamp"]
        assert FOREGROUND_FINALIZER in marked["metadata"]["finalizers"]

        await eventually(gone(store, "loose"), "every dependent is deleted")

        async def blocker_marked() -> bool:
            meta = (await store.get(S, "default", "blocker"))["metadata"]
            return bool(meta.get("deletionTimestamp"))

        await eventually(blocker_marked, "the blocking dependent is marked")
        await settle(gc)
        still = await store.get(S, "default", "owner")
        assert still["metadata"]["deletionTimestamp"]
        assert still["metadata"]["finalizers"] == [FOREGROUND_FINALIZER]

        await release(store, "blocker")
        await eventually(gone(store, "blocker", "owner"), "the owner goes after its blocker")


async def test_foreground_goes_bottom_up_through_a_chain(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store) as gc:
        owner = await secret(store, "owner")
        child = await secret(store, "child", owner, block=True)
        await store.create(
            S, make_secret("grandchild").owned_by(child, block=True).finalizers(HOLD).build()
        )
        await store.delete(S, "default", "owner", propagation="Foreground")

        async def child_waits() -> bool:
            meta = (await store.get(S, "default", "child"))["metadata"]
            return FOREGROUND_FINALIZER in meta.get("finalizers", [])

        await eventually(child_waits, "the child is deleted in the foreground too")
        await settle(gc)
        for name in ("owner", "child", "grandchild"):
            assert (await store.get(S, "default", name))["metadata"]["deletionTimestamp"]

        await release(store, "grandchild")
        await eventually(gone(store, "owner", "child", "grandchild"), "the chain goes")


async def test_a_foreground_cycle_does_not_wait_on_itself(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store):
        a = await secret(store, "a")
        b = await secret(store, "b", a, block=True)
        a["metadata"]["ownerReferences"] = (
            make_secret("a").owned_by(b, block=True).build()["metadata"]["ownerReferences"]
        )
        await store.update(S, a)
        await store.delete(S, "default", "a", propagation="Foreground")
        await eventually(gone(store, "a", "b"), "both members of the cycle go")


async def test_foreground_without_dependents_deletes_the_owner(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store):
        await secret(store, "lonely")
        await store.delete(S, "default", "lonely", propagation="Foreground")
        await eventually(gone(store, "lonely"), "the finalizer is removed at once")


async def test_foreground_keeps_an_owners_other_finalizers(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store) as gc:
        owner = await store.create(S, make_secret("owner").finalizers(HOLD).build())
        await secret(store, "child", owner, block=True)
        await store.delete(S, "default", "owner", propagation="Foreground")
        await eventually(gone(store, "child"), "the child goes")

        async def only_hold_left() -> bool:
            return (await store.get(S, "default", "owner"))["metadata"]["finalizers"] == [HOLD]

        await eventually(only_hold_left, "the GC removes only its own finalizer")
        await settle(gc)
        await release(store, "owner")
        assert not await exists(store, "owner")


# -- orphan ----------------------------------------------------------------------------


async def test_orphan_keeps_dependents_and_removes_their_reference(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store) as gc:
        owner = await secret(store, "owner")
        other = await secret(store, "other")
        await secret(store, "child", owner, block=True)
        await secret(store, "shared", owner, other)
        marked = await store.delete(S, "default", "owner", propagation="Orphan")
        assert marked["metadata"]["finalizers"] == ["orphan"]

        await eventually(gone(store, "owner"), "the owner goes once its dependents are freed")
        await settle(gc)
        assert owner_uids(await store.get(S, "default", "child")) == []
        assert "ownerReferences" not in (await store.get(S, "default", "child"))["metadata"]
        assert owner_uids(await store.get(S, "default", "shared")) == [other["metadata"]["uid"]]


# -- crash recovery and scope ----------------------------------------------------------


async def test_orphans_left_by_a_crash_are_collected_at_start(
    registry: Registry, store: SQLiteStore
) -> None:
    # All of this happens while no collector runs (as after a crash).
    live = await secret(store, "live")
    await secret(store, "kept", live)
    await store.create(S, make_secret("orphan").owner_ref("Secret", "ghost", "no-such-uid").build())
    await store.create(S, make_secret("stale").owner_ref("Secret", "live", "an-old-uid").build())
    # An owner of a kind this process does not know is never assumed gone.
    await store.create(S, make_secret("foreign").owner_ref("Gizmo", "g", "gizmo-uid").build())
    fg_owner = await secret(store, "fg-owner")
    await secret(store, "fg-child", fg_owner, block=True)
    await store.delete(S, "default", "fg-owner", propagation="Foreground")

    async with collecting(registry, store) as gc:
        await eventually(
            gone(store, "orphan", "stale", "fg-owner", "fg-child"), "leftovers are collected"
        )
        await settle(gc)
        assert await exists(store, "kept")
        assert await exists(store, "foreign")


async def test_owner_is_looked_up_in_the_dependents_namespace_or_cluster_scope(
    registry: Registry, store: SQLiteStore
) -> None:
    ns = await store.create("namespaces", make_namespace("team-a").build())
    owner = await secret(store, "owner")  # in default
    cross = make_secret("cross", "team-a").owned_by(owner).build()
    await store.create(S, cross)
    await store.create(S, make_secret("in-ns", "team-a").owned_by(ns).build())

    async with collecting(registry, store) as gc:

        async def cross_gone() -> bool:
            return not await exists(store, "cross", "team-a")

        await eventually(cross_gone, "a reference into another namespace resolves to nothing")
        await settle(gc)
        assert await exists(store, "in-ns", "team-a")  # a cluster-scoped owner is found
        assert await exists(store, "owner")


async def test_a_relisted_kind_is_scanned_again(registry: Registry, store: SQLiteStore) -> None:
    async with collecting(registry, store) as gc:
        await store.create(S, make_secret("late").owner_ref("Secret", "ghost", "gone-uid").build())
        await eventually(gone(store, "late"), "a new object with a missing owner is collected")
        # The watches end when the store closes them; the collector lists and scans again.
        store.broadcaster.close_all()
        await store.create(S, make_secret("later").owner_ref("Secret", "ghost", "gone-uid").build())
        await eventually(gone(store, "later"), "collected after the relist")
        await settle(gc)


async def test_an_ownerless_object_that_gains_a_missing_owner_is_collected(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store) as gc:
        plain = await secret(store, "plain")  # no owners: the collector only records it
        await settle(gc)
        plain["metadata"]["ownerReferences"] = (
            make_secret("plain").owner_ref("Secret", "ghost", "gone-uid").build()
        )["metadata"]["ownerReferences"]
        await store.update(S, plain)
        await eventually(gone(store, "plain"), "its owner is missing once it names one")


async def test_an_ownerless_object_can_own_dependents_in_any_order(
    registry: Registry, store: SQLiteStore
) -> None:
    async with collecting(registry, store):
        owner = await secret(store, "owner")
        await secret(store, "child", owner)
        await store.delete(S, "default", "owner")
        await eventually(gone(store, "child"), "the dependent of a plain owner is collected")


async def test_logs_name_objects_but_never_show_their_data(
    registry: Registry, store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="cnai")
    async with collecting(registry, store):
        owner = await secret(store, "owner")
        await secret(store, "child", owner)
        await store.delete(S, "default", "owner")
        await eventually(gone(store, "child"), "the child is collected")
    assert "child" in caplog.text
    assert MARKER not in caplog.text
    assert make_secret("x").data(k=MARKER).build()["data"]["k"] not in caplog.text


# -- the graph -------------------------------------------------------------------------


def node(uid: str, *owners: str, deleting: bool = False, fin: tuple[str, ...] = ()) -> Node:
    refs = tuple(OwnerRef(o, "Secret", o, False) for o in owners)
    return Node(S, "default", uid, uid, refs, deleting, frozenset(fin))


def test_graph_index_follows_changes_of_owner_references() -> None:
    graph = Graph()
    graph.upsert(node("c", "a", "b"))
    assert [n.uid for n in graph.dependents("a")] == ["c"]
    graph.upsert(node("c", "b"))
    assert graph.dependents("a") == []
    assert [n.uid for n in graph.dependents("b")] == ["c"]
    graph.remove("c")
    assert graph.dependents("b") == []
    assert graph.nodes == {}


@pytest.mark.parametrize(
    ("owner", "solid"),
    [
        pytest.param(None, False, id="unknown-owner-is-not-solid"),
        pytest.param(node("o"), True, id="live-owner-is-solid"),
        pytest.param(node("o", deleting=True), True, id="owner-deleted-in-background-is-solid"),
        pytest.param(
            node("o", deleting=True, fin=(FOREGROUND_FINALIZER,)),
            False,
            id="owner-waiting-for-dependents-is-not-solid",
        ),
    ],
)
def test_graph_solid_owners(owner: Node | None, solid: bool) -> None:
    graph = Graph()
    if owner is not None:
        graph.upsert(owner)
    assert graph.solid("o", "default") is solid


def test_an_owner_in_another_namespace_is_in_doubt() -> None:
    graph = Graph()
    graph.upsert(node("o"))
    assert not graph.solid("o", "team-a")
    assert not graph.owners_in_doubt(node("c", "o"))
    assert graph.owners_in_doubt(
        Node(S, "team-a", "c", "c", node("x", "o").owners, False, frozenset())
    )


@pytest.mark.parametrize(
    ("before", "after", "queued"),
    [
        pytest.param(None, node("c"), set(), id="a-new-ownerless-object-queues-nothing"),
        pytest.param(node("c"), node("c"), set(), id="an-unchanged-ownerless-object"),
        pytest.param(
            node("c", "o"),
            node("c"),
            {(Action.OWNER, "o")},
            id="dropping-its-reference-wakes-the-waiting-owner",
        ),
        pytest.param(
            node("c"),
            node("c", "gone"),
            {(Action.DEPENDENT, "c")},
            id="naming-a-missing-owner-queues-a-check",
        ),
        pytest.param(
            node("c"),
            node("c", deleting=True, fin=(FOREGROUND_FINALIZER,)),
            {(Action.OWNER, "c")},
            id="a-foreground-deletion-queues-the-owner",
        ),
    ],
)
def test_graph_changes_queue_what_must_be_looked_at(
    registry: Registry, before: Node | None, after: Node, queued: set[tuple[Action, str]]
) -> None:
    gc = GarbageCollector(registry, None)  # type: ignore[arg-type]  # never touched here
    gc._ready = True
    gc._apply(node("o", deleting=True, fin=(FOREGROUND_FINALIZER,)))  # waits for "c"
    if before is not None:
        gc._apply(before)
    gc._queued.clear()
    gc._apply(after)
    assert gc.graph.nodes["c"] == after
    assert gc._queued == queued
