"""Schema migrations: a database made by an older revision opens at head with its data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cnai.core.store.sqlite import SQLiteStore

from ..builders import FakeClock, make_secret, make_widget

pytestmark = pytest.mark.anyio

INDEX = "ix_changes_resource_rv"


def schema_of(path: Path) -> tuple[set[str], str]:
    """Index names and the alembic revision of the database file."""
    with sqlite3.connect(path) as conn:
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    conn.close()
    return indexes, revision


async def test_database_at_0001_upgrades_to_head_with_objects_intact(
    db_path: Path, clock: FakeClock
) -> None:
    old = SQLiteStore(db_path, clock=clock, migrate_to="0001")
    widget = await old.create("widgets", make_widget("w1").spec(size=1).build())
    secret = await old.create("secrets", make_secret("s1").data(k="v").build())
    await old.update("widgets", make_widget("w1").spec(size=2).build())
    last = old.current_resource_version()
    await old.close()
    indexes, revision = schema_of(db_path)
    assert revision == "0001"
    assert INDEX not in indexes

    new = SQLiteStore(db_path, clock=clock)
    try:
        indexes, revision = schema_of(db_path)
        assert revision == "0002"
        assert INDEX in indexes
        assert new.current_resource_version() == last
        assert (await new.get("secrets", "default", "s1")) == secret
        upgraded = await new.get("widgets", "default", "w1")
        assert upgraded["spec"] == {"size": 2}
        assert upgraded["metadata"]["uid"] == widget["metadata"]["uid"]
        # The change log written at 0001 still replays after the upgrade.
        watch = new.watch("widgets", resource_version="0")
        assert (await anext(watch)).object["metadata"]["name"] == "w1"
        await watch.aclose()
        resumed = new.watch("widgets", resource_version=widget["metadata"]["resourceVersion"])
        assert (await anext(resumed)).object["spec"] == {"size": 2}
        await resumed.aclose()
    finally:
        await new.close()


async def test_opening_at_head_twice_is_a_no_op(db_path: Path, clock: FakeClock) -> None:
    first = SQLiteStore(db_path, clock=clock)
    await first.create("widgets", make_widget("w1").build())
    await first.close()
    again = SQLiteStore(db_path, clock=clock)
    try:
        assert (await again.list("widgets")).items[0]["metadata"]["name"] == "w1"
        indexes, revision = schema_of(db_path)
        assert (INDEX in indexes, revision) == (True, "0002")
    finally:
        await again.close()
