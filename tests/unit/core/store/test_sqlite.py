"""SQLiteStore reads and writes against a real database file: CRUD, concurrency, finalizers."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnai.core.errors import AlreadyExists, Conflict, NotFound
from cnai.core.selectors import FieldSelector, LabelSelector
from cnai.core.store.protocol import WatchEventType
from cnai.core.store.sqlite import SQLiteStore

from ..builders import T0, FakeClock, iso, make_namespace, make_widget

pytestmark = pytest.mark.anyio

W = "widgets"


async def test_create_fills_metadata_and_get_returns_it(
    store: SQLiteStore, clock: FakeClock
) -> None:
    created = await store.create(W, make_widget("w1").spec(size=1).build())
    meta = created["metadata"]
    assert meta["uid"]
    assert meta["creationTimestamp"] == iso(T0)
    assert meta["generation"] == 1
    assert meta["resourceVersion"] == store.current_resource_version()
    assert await store.get(W, "default", "w1") == created


async def test_uids_are_unique(store: SQLiteStore) -> None:
    a = await store.create(W, make_widget("a").build())
    b = await store.create(W, make_widget("b").build())
    assert a["metadata"]["uid"] != b["metadata"]["uid"]


async def test_create_refuses_a_taken_name(store: SQLiteStore) -> None:
    await store.create(W, make_widget("w1").build())
    with pytest.raises(AlreadyExists, match="'w1' already exists"):
        await store.create(W, make_widget("w1").spec(size=2).build())


async def test_same_name_in_other_namespace_or_resource_is_a_different_object(
    store: SQLiteStore,
) -> None:
    await store.create(W, make_widget("w1").build())
    await store.create(W, make_widget("w1", "team-a").build())
    await store.create("gadgets", make_widget("w1").kind("Gadget").build())
    assert (await store.get(W, "team-a", "w1"))["metadata"]["namespace"] == "team-a"
    assert (await store.get("gadgets", "default", "w1"))["kind"] == "Gadget"


async def test_get_missing_raises_not_found(store: SQLiteStore) -> None:
    await store.create(W, make_widget("w1").build())
    with pytest.raises(NotFound):
        await store.get(W, "default", "nope")
    with pytest.raises(NotFound):
        await store.get(W, "team-a", "w1")


async def test_cluster_scoped_objects_are_keyed_without_namespace(store: SQLiteStore) -> None:
    await store.create("namespaces", make_namespace("team-a").build())
    assert (await store.get("namespaces", None, "team-a"))["metadata"]["name"] == "team-a"


@pytest.fixture
async def populated(store: SQLiteStore) -> SQLiteStore:
    await store.create(W, make_widget("web", "default").labels(app="web", tier="fe").build())
    await store.create(W, make_widget("db", "default").labels(app="db", tier="be").build())
    await store.create(W, make_widget("web", "team-a").labels(app="web").build())
    await store.create(W, make_widget("cache", "team-a").build())
    await store.create("gadgets", make_widget("web").kind("Gadget").build())
    return store


@pytest.mark.parametrize(
    ("namespace", "labels", "fields", "expected"),
    [
        pytest.param(
            None,
            None,
            None,
            ["default/db", "default/web", "team-a/cache", "team-a/web"],
            id="all-namespaces-ordered-by-namespace-then-name-without-other-resources",
        ),
        pytest.param("team-a", None, None, ["team-a/cache", "team-a/web"], id="one-namespace"),
        pytest.param("empty", None, None, [], id="empty-namespace"),
        pytest.param(None, "app=web", None, ["default/web", "team-a/web"], id="label-equals"),
        pytest.param(None, "app!=web", None, ["default/db", "team-a/cache"], id="label-not-eq"),
        pytest.param("default", "tier", None, ["default/db", "default/web"], id="label-exists"),
        pytest.param(None, "!app", None, ["team-a/cache"], id="label-not-exists"),
        pytest.param(
            None, None, "metadata.name=web", ["default/web", "team-a/web"], id="field-name"
        ),
        pytest.param(
            None,
            None,
            "metadata.namespace!=default",
            ["team-a/cache", "team-a/web"],
            id="field-not-equal",
        ),
        pytest.param(
            "team-a", "app=web", "metadata.name=web", ["team-a/web"], id="namespace-label-field"
        ),
    ],
)
async def test_list_filters(
    populated: SQLiteStore,
    namespace: str | None,
    labels: str | None,
    fields: str | None,
    expected: list[str],
) -> None:
    listed = await populated.list(
        W,
        namespace,
        LabelSelector.parse(labels) if labels else None,
        FieldSelector.parse(fields) if fields else None,
    )
    got = [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in listed.items]
    assert got == expected
    assert listed.resource_version == populated.current_resource_version()


async def test_update_checks_resource_version(store: SQLiteStore) -> None:
    created = await store.create(W, make_widget("w1").spec(size=1).build())
    rv1 = created["metadata"]["resourceVersion"]
    first = dict(created, spec={"size": 2})
    updated = await store.update(W, first)
    assert int(updated["metadata"]["resourceVersion"]) > int(rv1)
    stale = dict(created, spec={"size": 3})  # still carries rv1
    with pytest.raises(Conflict, match=f"resourceVersion {rv1} is stale"):
        await store.update(W, stale)
    assert (await store.get(W, "default", "w1"))["spec"] == {"size": 2}


async def test_update_without_resource_version_is_unconditional(store: SQLiteStore) -> None:
    await store.create(W, make_widget("w1").spec(size=1).build())
    await store.update(W, make_widget("w1").spec(size=2).build())
    updated = await store.update(W, make_widget("w1").spec(size=3).build())
    assert updated["spec"] == {"size": 3}
    assert updated["metadata"]["generation"] == 3


async def test_update_of_missing_object_raises_not_found(store: SQLiteStore) -> None:
    with pytest.raises(NotFound):
        await store.update(W, make_widget("ghost").build())


async def test_update_keeps_status_and_status_update_keeps_spec(store: SQLiteStore) -> None:
    await store.create(W, make_widget("w1").spec(size=1).build())
    with_status = await store.update_status(
        W, make_widget("w1").spec(size=99).status(phase="Running").build()
    )
    assert with_status["spec"] == {"size": 1}
    assert with_status["metadata"]["generation"] == 1
    relabelled = await store.update(
        W, make_widget("w1").spec(size=1).labels(app="x").status(phase="Lost").build()
    )
    assert relabelled["status"] == {"phase": "Running"}
    assert relabelled["metadata"]["generation"] == 1


async def test_update_status_checks_resource_version(store: SQLiteStore) -> None:
    created = await store.create(W, make_widget("w1").build())
    await store.update_status(W, dict(created, status={"phase": "A"}))
    with pytest.raises(Conflict):
        await store.update_status(W, dict(created, status={"phase": "B"}))


async def test_delete_without_finalizers_removes(store: SQLiteStore) -> None:
    await store.create(W, make_widget("w1").build())
    gone = await store.delete(W, "default", "w1")
    assert gone["metadata"]["name"] == "w1"
    with pytest.raises(NotFound):
        await store.get(W, "default", "w1")
    with pytest.raises(NotFound):
        await store.delete(W, "default", "w1")


async def test_delete_checks_resource_version(store: SQLiteStore) -> None:
    created = await store.create(W, make_widget("w1").build())
    await store.update(W, dict(created, spec={"size": 2}))
    with pytest.raises(Conflict):
        await store.delete(W, "default", "w1", created["metadata"]["resourceVersion"])
    assert await store.get(W, "default", "w1")


async def test_delete_with_finalizers_marks_and_keeps(store: SQLiteStore, clock: FakeClock) -> None:
    await store.create(W, make_widget("w1").finalizers("cnai.io/a").build())
    clock.advance(30)
    marked = await store.delete(W, "default", "w1")
    assert marked["metadata"]["deletionTimestamp"] == iso(clock())
    kept = await store.get(W, "default", "w1")
    assert kept["metadata"]["deletionTimestamp"] == iso(clock())
    clock.advance(30)
    again = await store.delete(W, "default", "w1")  # idempotent: no new version, same mark
    assert again == kept


async def test_removing_last_finalizer_deletes_with_a_deleted_event(store: SQLiteStore) -> None:
    await store.create(W, make_widget("w1").finalizers("a", "b").build())
    await store.delete(W, "default", "w1")
    watch = store.watch(W, resource_version=store.current_resource_version())
    one_left = await store.update(W, make_widget("w1").finalizers("b").build())
    assert one_left["metadata"]["finalizers"] == ["b"]
    await store.update(W, make_widget("w1").finalizers().build())
    with pytest.raises(NotFound):
        await store.get(W, "default", "w1")
    first, second = await anext(watch), await anext(watch)
    await watch.aclose()
    assert first.type is WatchEventType.MODIFIED
    assert second.type is WatchEventType.DELETED
    assert second.object["metadata"]["name"] == "w1"


async def test_resource_versions_increase_with_every_write(store: SQLiteStore) -> None:
    writes = [
        store.create(W, make_widget("w1").build()),
        store.update(W, make_widget("w1").spec(a=1).build()),
        store.update_status(W, make_widget("w1").status(p=1).build()),
        store.delete(W, "default", "w1"),
        store.create(W, make_widget("w2").build()),
    ]
    versions = [int((await write)["metadata"]["resourceVersion"]) for write in writes]
    assert versions == sorted(set(versions))


async def test_resource_version_survives_reopen(db_path: Path, clock: FakeClock) -> None:
    first = SQLiteStore(db_path, clock=clock)
    created = await first.create(W, make_widget("w1").spec(size=1).build())
    await first.delete(W, "default", "w1")  # the highest version now lives only in the log
    last = int(first.current_resource_version())
    await first.close()

    reopened = SQLiteStore(db_path, clock=clock)
    try:
        assert int(reopened.current_resource_version()) == last
        again = await reopened.create(W, make_widget("w1").build())
        assert int(again["metadata"]["resourceVersion"]) > last
        assert again["metadata"]["uid"] != created["metadata"]["uid"]
    finally:
        await reopened.close()


async def test_objects_survive_reopen(db_path: Path, clock: FakeClock) -> None:
    first = SQLiteStore(db_path, clock=clock)
    created = await first.create(W, make_widget("w1").spec(size=1).labels(app="x").build())
    await first.close()
    reopened = SQLiteStore(db_path, clock=clock)
    try:
        assert await reopened.get(W, "default", "w1") == created
    finally:
        await reopened.close()
