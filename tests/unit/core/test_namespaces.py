"""Namespace deletion: emptying a terminating namespace, then releasing its finalizer."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest

from cnai.core.errors import NotFound, ServiceUnavailable
from cnai.core.kernel import NAMESPACE_FINALIZER
from cnai.core.namespaces import NamespaceFinalizer
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.store.protocol import Obj, WatchEventType
from cnai.core.store.sqlite import SQLiteStore

from .builders import make_event, make_namespace, make_secret

pytestmark = pytest.mark.anyio

MARKER = "NS-SECRET-MARKER-91"


async def fill(store: SQLiteStore, namespace: str) -> None:
    await store.create("secrets", make_secret("plain", namespace).data(k="v").build())
    await store.create("secrets", make_secret("guarded", namespace).finalizers("x/y").build())
    await store.create("events", make_event("plain.1", namespace).build())


async def test_empty_once_deletes_every_namespaced_kind_and_reports_what_remains(
    store: SQLiteStore, registry: Registry
) -> None:
    await store.create("namespaces", make_namespace("team-a").build())
    await fill(store, "team-a")
    await fill(store, "team-b")
    finalizer = NamespaceFinalizer(registry, store)

    assert await finalizer.empty_once("team-a") == 1  # only the object with a finalizer
    (guarded,) = (await store.list("secrets", "team-a")).items
    assert guarded["metadata"]["name"] == "guarded"
    assert guarded["metadata"]["deletionTimestamp"]
    assert (await store.list("events", "team-a")).items == []
    # Other namespaces and cluster-scoped objects are untouched.
    assert len((await store.list("secrets", "team-b")).items) == 2
    assert len((await store.list("events", "team-b")).items) == 1
    assert await store.get("namespaces", None, "team-a")

    assert await finalizer.empty_once("team-a") == 1  # still waiting on its finalizer
    await store.update("secrets", make_secret("guarded", "team-a").finalizers().build())
    assert await finalizer.empty_once("team-a") == 0


async def test_empty_once_on_an_empty_namespace_is_zero(
    store: SQLiteStore, registry: Registry
) -> None:
    assert await NamespaceFinalizer(registry, store).empty_once("nothing-here") == 0


class FlakyStore(SQLiteStore):
    """A real store whose deletes of one object fail (a fault, to isolate the loop's handling)."""

    broken = "broken"

    async def delete(
        self, resource: str, namespace: str | None, name: str, resource_version: str | None = None
    ) -> Obj:
        if name == self.broken:
            raise ServiceUnavailable("database is locked")
        return await super().delete(resource, namespace, name, resource_version)


async def test_failed_delete_counts_as_remaining_and_logs_no_secret_values(
    db_path: Path, registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    store = FlakyStore(db_path)
    try:
        await store.create("secrets", make_secret("broken", "team-a").data(k=MARKER).build())
        await store.create("secrets", make_secret("fine", "team-a").build())
        with caplog.at_level(logging.WARNING, logger="cnai.core.namespaces"):
            remaining = await NamespaceFinalizer(registry, store).empty_once("team-a")
        assert remaining == 1
        assert "broken" in caplog.text
        encoded = (await store.get("secrets", "team-a", "broken"))["data"]["k"]
        assert encoded not in caplog.text
        assert MARKER not in caplog.text
    finally:
        await store.close()


async def test_deleted_namespace_is_emptied_and_then_goes_away(
    store: SQLiteStore, registry: Registry
) -> None:
    service = ResourceService(registry, store)
    await service.create("namespaces", make_namespace("team-a").build())
    await service.create("secrets", make_secret("s", "team-a").build(), "team-a")
    finalizer = NamespaceFinalizer(registry, store, retry_seconds=0)
    watch = store.watch("namespaces", resource_version=store.current_resource_version())
    async with anyio.create_task_group() as tg:
        tg.start_soon(finalizer.run)
        marked = await service.delete("namespaces", None, "team-a")
        assert marked["metadata"]["finalizers"] == [NAMESPACE_FINALIZER]
        assert marked["status"]["phase"] == "Terminating"
        async for ev in watch:
            if ev.type is WatchEventType.DELETED:
                break
        tg.cancel_scope.cancel()
    await watch.aclose()
    await finalizer.stop()
    with pytest.raises(NotFound):
        await store.get("namespaces", None, "team-a")
    assert (await store.list("secrets", "team-a")).items == []
