"""The embedded Store: one SQLite file in WAL mode, migrated by alembic at open.

All access happens on the event loop's thread through one connection, so writes are
naturally serialized and a write's read-check-write needs no locks. A write is
acknowledged only after its transaction commits; with WAL, a committed transaction
survives the process being killed (``synchronous=NORMAL``; set ``durability="full"`` to
also survive power loss at some cost in throughput).

The schema is SQLAlchemy Core (``schema.py``) migrated by alembic; the statements on the
hot path run on the sqlite3 connection directly, because SQLAlchemy's per-statement
execution overhead (about 40 us here) was half the cost of a create.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from pydantic_core import from_json, to_json
from sqlalchemy import Connection, create_engine

from cnai.core.errors import AlreadyExists, ApiError, Conflict, Gone, InsufficientStorage, NotFound
from cnai.core.selectors import FieldSelector, LabelSelector
from cnai.core.store import strategy
from cnai.core.store.protocol import Obj, ObjectList, WatchEvent, WatchEventType
from cnai.core.store.watch import Broadcaster, Subscriber, WatchStream

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"

# Keep in sync with schema.py and migrations/versions.
_SELECT_ONE = "SELECT data FROM objects WHERE resource = ? AND namespace = ? AND name = ?"
_INSERT_OBJECT = (
    "INSERT INTO objects (resource, namespace, name, uid, rv, data) VALUES (?, ?, ?, ?, ?, ?)"
)
_UPDATE_OBJECT = (
    "UPDATE objects SET rv = ?, data = ? WHERE resource = ? AND namespace = ? AND name = ?"
)
_DELETE_OBJECT = "DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?"
_INSERT_CHANGE = (
    "INSERT INTO changes (rv, resource, namespace, name, type, data) VALUES (?, ?, ?, ?, ?, ?)"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _is_disk_full(exc: BaseException) -> bool:
    """True for SQLite's "database or disk is full" (SQLITE_FULL), whatever the statement."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return code == sqlite3.SQLITE_FULL or "disk is full" in str(exc)


def alembic_config(connection: Connection) -> Config:
    """An alembic Config that runs this package's migrations on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(path: Path, revision: str = "head") -> None:
    """Bring the database file at ``path`` to ``revision`` with alembic."""
    engine = create_engine(f"sqlite+pysqlite:///{path}")
    try:
        with engine.begin() as conn:
            command.upgrade(alembic_config(conn), revision)
    finally:
        engine.dispose()


class SQLiteStore:
    """Store protocol over SQLite (see :mod:`cnai.core.store.protocol` for the rules)."""

    def __init__(
        self,
        path: Path | str,
        *,
        durability: str = "normal",
        watch_history: int = 50_000,
        clock: Callable[[], datetime] = _utcnow,
        migrate_to: str = "head",
        max_page_count: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.watch_history = watch_history
        self.broadcaster = Broadcaster()
        migrate(self.path, migrate_to)
        # Autocommit mode: single reads need no transaction; writes open one explicitly.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
        self._db.execute("PRAGMA busy_timeout=5000")
        if max_page_count is not None:
            self.set_max_page_count(max_page_count)
        last = self._scalar("SELECT max(rv) FROM changes")
        last_obj = self._scalar("SELECT max(rv) FROM objects")
        first = self._scalar("SELECT min(rv) FROM changes")
        self._rv = max(last or 0, last_obj or 0)
        # Versions at or below this have been compacted; a watch from them gets 410.
        self._compacted = (first - 1) if first else self._rv
        self._writes_since_compact = 0

    def _scalar(self, sql: str) -> Any:
        row = self._db.execute(sql).fetchone()
        return row[0] if row else None

    def set_max_page_count(self, pages: int) -> None:
        """Cap the database file at ``pages`` pages, as a full disk would (for tests)."""
        self._db.execute(f"PRAGMA max_page_count={int(pages)}")

    @contextmanager
    def _tx(self) -> Iterator[None]:
        """One atomic write transaction; rolled back (and the version counter kept) on error.

        A full disk (SQLITE_FULL) becomes :class:`InsufficientStorage` once the
        transaction is rolled back, so the caller learns that nothing was written.
        """
        rv_before = self._rv
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException as exc:
            # SQLite may already have rolled back by itself (it does on some SQLITE_FULL).
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            self._rv = rv_before
            if _is_disk_full(exc):
                raise self._disk_full() from None
            raise

    def _disk_full(self) -> InsufficientStorage:
        log.error("the object store %s is full; a write was refused and rolled back", self.path)
        return InsufficientStorage(
            f"the disk under CNAI_HOME is full (object store {self.path}); nothing was "
            "written. Free some space and retry"
        )

    # -- helpers ---------------------------------------------------------------------

    def current_resource_version(self) -> str:
        return str(self._rv)

    @staticmethod
    def _key(obj: Obj) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return meta.get("namespace") or "", meta.get("name") or ""

    def _load(self, resource: str, namespace: str, name: str) -> Obj:
        row = self._db.execute(_SELECT_ONE, (resource, namespace, name)).fetchone()
        if row is None:
            raise NotFound(f"{resource} {name!r} not found", name=name)
        data: Obj = from_json(row[0])
        return data

    def _log_change(self, resource: str, kind: WatchEventType, obj: Obj, raw: str) -> WatchEvent:
        ns, name = self._key(obj)
        self._db.execute(_INSERT_CHANGE, (self._rv, resource, ns, name, kind.value, raw))
        return WatchEvent(kind, obj, resource, self._rv, raw)

    def _stamp(self, obj: Obj) -> str:
        """Assign the next resourceVersion and return the object's JSON."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        return to_json(obj).decode()

    def _after_commit(self, ev: WatchEvent) -> None:
        self.broadcaster.publish(ev)
        self._writes_since_compact += 1
        if self._writes_since_compact >= 1000:
            self._compact()

    def _compact(self) -> None:
        self._writes_since_compact = 0
        floor = self._rv - self.watch_history
        if floor <= self._compacted:
            return
        try:
            with self._tx():
                self._db.execute("DELETE FROM changes WHERE rv <= ?", (floor,))
        except ApiError:
            # The write that triggered this has committed; trimming waits for the next round.
            log.warning("could not trim the change history of %s; will retry", self.path)
            return
        self._compacted = floor

    @staticmethod
    def _check_rv(current: Obj, expected: str | None) -> None:
        have = current["metadata"].get("resourceVersion")
        if expected and expected != have:
            name = current["metadata"].get("name")
            raise Conflict(
                f"the object {name!r} has been modified (resourceVersion {expected} is stale, "
                f"current is {have}); read it again and retry",
                name=name,
            )

    # -- Store protocol ---------------------------------------------------------------

    async def create(self, resource: str, obj: Obj) -> Obj:
        new = strategy.prepare_create(obj, uid=str(uuid.uuid4()), now=self.clock())
        ns, name = self._key(new)
        try:
            with self._tx():
                raw = self._stamp(new)
                uid = new["metadata"]["uid"]
                self._db.execute(_INSERT_OBJECT, (resource, ns, name, uid, self._rv, raw))
                ev = self._log_change(resource, WatchEventType.ADDED, new, raw)
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"{resource} {name!r} already exists", name=name) from None
        self._after_commit(ev)
        return new

    async def get(self, resource: str, namespace: str | None, name: str) -> Obj:
        return self._load(resource, namespace or "", name)

    async def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
    ) -> ObjectList:
        sql = "SELECT data FROM objects WHERE resource = ?"
        args: builtins.list[str] = [resource]
        if namespace is not None:
            sql += " AND namespace = ?"
            args.append(namespace)
        if field_selector and (name := field_selector.value_of("metadata.name")) is not None:
            sql += " AND name = ?"
            args.append(name)
        # One statement is one consistent snapshot, and no write can run until this
        # method returns, so the version read next matches the rows.
        rows = self._db.execute(sql + " ORDER BY namespace, name", args).fetchall()
        rv = str(self._rv)
        if not label_selector and not field_selector:
            return ObjectList(resource_version=rv, raw=[raw for (raw,) in rows])
        matching: builtins.list[str] = []
        for (raw,) in rows:
            obj: Obj = from_json(raw)
            labels = obj["metadata"].get("labels") or {}
            if label_selector and not label_selector.matches(labels):
                continue
            if field_selector and not field_selector.matches(obj):
                continue
            matching.append(raw)
        return ObjectList(resource_version=rv, raw=matching)

    async def update(self, resource: str, obj: Obj) -> Obj:
        ns, name = self._key(obj)
        with self._tx():
            old = self._load(resource, ns, name)
            self._check_rv(old, obj.get("metadata", {}).get("resourceVersion"))
            new = strategy.prepare_update(old, obj)
            ev = self._write(resource, new)
        self._after_commit(ev)
        return new

    async def update_status(self, resource: str, obj: Obj) -> Obj:
        ns, name = self._key(obj)
        with self._tx():
            old = self._load(resource, ns, name)
            self._check_rv(old, obj.get("metadata", {}).get("resourceVersion"))
            new = strategy.prepare_status_update(old, obj)
            ev = self._write(resource, new)
        self._after_commit(ev)
        return new

    async def delete(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        resource_version: str | None = None,
        propagation: str | None = None,
    ) -> Obj:
        policy = strategy.parse_propagation(propagation)
        with self._tx():
            old = self._load(resource, namespace or "", name)
            self._check_rv(old, resource_version)
            new = strategy.prepare_delete(old, self.clock(), policy)
            if new is old:
                return old
            if new is None:
                ev = self._remove(resource, old)
                new = ev.object
            else:
                ev = self._write(resource, new)
        self._after_commit(ev)
        return new

    def _write(self, resource: str, new: Obj) -> WatchEvent:
        """Store an updated object, or remove it if deletion has been released."""
        if strategy.is_released(new):
            return self._remove(resource, new)
        ns, name = self._key(new)
        raw = self._stamp(new)
        self._db.execute(_UPDATE_OBJECT, (self._rv, raw, resource, ns, name))
        return self._log_change(resource, WatchEventType.MODIFIED, new, raw)

    def _remove(self, resource: str, old: Obj) -> WatchEvent:
        ns, name = self._key(old)
        gone = dict(old)
        gone["metadata"] = dict(old["metadata"])
        raw = self._stamp(gone)
        self._db.execute(_DELETE_OBJECT, (resource, ns, name))
        return self._log_change(resource, WatchEventType.DELETED, gone, raw)

    def watch(
        self,
        resource: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
    ) -> AsyncIterator[WatchEvent]:
        # Subscribe before catching up, so nothing committed from here on is missed; a
        # too-old version raises Gone now, before the caller starts a response.
        sub = self.broadcaster.subscribe(resource, namespace, label_selector, field_selector)
        try:
            events, seen = self._catch_up(sub, resource_version)
        except BaseException:
            self.broadcaster.unsubscribe(sub)
            raise
        return WatchStream(self.broadcaster, sub, self._stream(sub, events, seen))

    async def _stream(
        self, sub: Subscriber, events: builtins.list[WatchEvent], seen: int
    ) -> AsyncGenerator[WatchEvent, None]:
        try:
            for ev in events:
                yield ev
            while True:
                ev = await sub.queue.get()
                if ev.type is WatchEventType.ERROR:
                    yield ev
                    return
                if ev.type is WatchEventType.BOOKMARK:
                    return  # the store is closing
                if ev.resource_version <= seen:
                    continue
                seen = ev.resource_version
                yield ev
        finally:
            self.broadcaster.unsubscribe(sub)

    def _catch_up(
        self, sub: Subscriber, resource_version: str | None
    ) -> tuple[builtins.list[WatchEvent], int]:
        """Events a new watch must see first, and the version it has then seen up to."""
        if not resource_version or resource_version == "0":
            events, seen = self._current_objects(sub)
        else:
            try:
                start = int(resource_version)
            except ValueError:
                raise Gone(f"resourceVersion {resource_version!r} is not valid here") from None
            # A version from the future has nothing to replay yet (and may not fit SQLite).
            events, seen = self._history(sub, min(start, self._rv))
        return [e for e in events if sub.wants(e)], seen

    def _current_objects(self, sub: Subscriber) -> tuple[builtins.list[WatchEvent], int]:
        sql = "SELECT data, rv FROM objects WHERE resource = ?"
        args: builtins.list[str] = [sub.resource]
        if sub.namespace is not None:
            sql += " AND namespace = ?"
            args.append(sub.namespace)
        rows = self._db.execute(sql + " ORDER BY rv", args).fetchall()
        seen = self._rv
        events = [
            WatchEvent(WatchEventType.ADDED, from_json(raw), sub.resource, rv, raw)
            for raw, rv in rows
        ]
        return events, seen

    def _history(self, sub: Subscriber, start: int) -> tuple[builtins.list[WatchEvent], int]:
        if start < self._compacted:
            raise Gone(
                f"resourceVersion {start} is too old (history starts after {self._compacted}); "
                "list again and watch from the list's resourceVersion"
            )
        sql = "SELECT type, data, rv FROM changes WHERE resource = ? AND rv > ?"
        args: builtins.list[str | int] = [sub.resource, start]
        if sub.namespace is not None:
            sql += " AND namespace = ?"
            args.append(sub.namespace)
        rows = self._db.execute(sql + " ORDER BY rv", args).fetchall()
        seen = self._rv
        events = [
            WatchEvent(WatchEventType(t), from_json(raw), sub.resource, rv, raw)
            for t, raw, rv in rows
        ]
        return events, seen

    async def close(self) -> None:
        self.broadcaster.close_all()
        self._db.close()
