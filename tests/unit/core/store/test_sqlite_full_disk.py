"""A full disk gives a clear 507 and leaves the database as it was.

The file is capped with ``PRAGMA max_page_count``: SQLite then fails with SQLITE_FULL
("database or disk is full") exactly as it does when the disk itself is full.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cnai.core.errors import InsufficientStorage, NotFound
from cnai.core.store.sqlite import SQLiteStore

from ..builders import FakeClock, make_widget

pytestmark = pytest.mark.anyio

W = "widgets"
BIG = "x" * 200_000  # about 50 pages of 4 KiB


def page_count(path: Path) -> int:
    with sqlite3.connect(path) as db:
        count: int = db.execute("PRAGMA page_count").fetchone()[0]
    return count


@pytest.fixture
async def full(db_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteStore]:
    """A store holding two objects whose file may grow by only a few pages."""
    store = SQLiteStore(db_path, clock=clock)
    await store.create(W, make_widget("kept").spec(size=1).build())
    await store.create(W, make_widget("other").spec(size=2).build())
    store.set_max_page_count(page_count(db_path) + 2)
    yield store
    await store.close()


async def test_a_create_on_a_full_disk_is_a_clear_507_and_writes_nothing(
    full: SQLiteStore, db_path: Path
) -> None:
    before = [await full.get(W, "default", n) for n in ("kept", "other")]
    version = full.current_resource_version()
    watch = full.watch(W, resource_version=version)

    with pytest.raises(InsufficientStorage) as caught:
        await full.create(W, make_widget("big").spec(blob=BIG).build())

    err = caught.value
    assert (err.code, err.reason) == (507, "InsufficientStorage")
    assert "disk under CNAI_HOME is full" in err.message
    assert "nothing was written" in err.message
    assert err.to_status()["code"] == 507
    with pytest.raises(NotFound):
        await full.get(W, "default", "big")
    assert [await full.get(W, "default", n) for n in ("kept", "other")] == before
    assert full.current_resource_version() == version
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert (
            db.execute("SELECT count(*) FROM changes WHERE rv > ?", (int(version),)).fetchone()[0]
            == 0
        )

    # Room again: writes work and versions carry on without a gap.
    full.set_max_page_count(1_000_000)
    created = await full.create(W, make_widget("big").spec(blob=BIG).build())
    assert created["metadata"]["resourceVersion"] == str(int(version) + 1)
    ev = await anext(watch)  # the failed write was never announced
    assert ev.object["metadata"]["name"] == "big"
    await watch.aclose()  # type: ignore[attr-defined]


async def test_an_update_on_a_full_disk_keeps_the_old_object(full: SQLiteStore) -> None:
    old = await full.get(W, "default", "kept")
    with pytest.raises(InsufficientStorage):
        await full.update(W, make_widget("kept").spec(blob=BIG).build())
    assert await full.get(W, "default", "kept") == old
    # Deleting frees space and needs none: it still works on a full disk.
    await full.delete(W, "default", "other")
    with pytest.raises(NotFound):
        await full.get(W, "default", "other")


async def test_a_reopened_store_has_every_committed_object(
    full: SQLiteStore, db_path: Path
) -> None:
    with pytest.raises(InsufficientStorage):
        await full.create(W, make_widget("big").spec(blob=BIG).build())
    await full.close()
    reopened = SQLiteStore(db_path)
    try:
        names = [o["metadata"]["name"] for o in (await reopened.list(W)).items]
        assert names == ["kept", "other"]
        await reopened.create(W, make_widget("big").spec(blob=BIG).build())
    finally:
        await reopened.close()
