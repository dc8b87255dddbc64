"""The embedded Store: one SQLite file in WAL mode, migrated by alembic at open.

All access happens on the event loop's thread through one connection, so writes are
naturally serialized and a write's read-check-write needs no locks. A write is
acknowledged only after its transaction commits; with WAL, a committed transaction
survives the process being killed (``synchronous=NORMAL``; set ``durability="full"`` to
also survive power loss at some cost in throughput).
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from pydantic_core import from_json, to_json
from sqlalchemy import (
    Connection,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from cnai.core.errors import AlreadyExists, Conflict, Gone, NotFound
from cnai.core.selectors import FieldSelector, LabelSelector
from cnai.core.store import strategy
from cnai.core.store.protocol import Obj, ObjectList, WatchEvent, WatchEventType
from cnai.core.store.schema import changes, objects
from cnai.core.store.watch import Broadcaster, Subscriber

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"


# Statements are built once with bind parameters: building them per call costs more
# than SQLite's own work.
_KEY = (
    (objects.c.resource == bindparam("k_resource"))
    & (objects.c.namespace == bindparam("k_namespace"))
    & (objects.c.name == bindparam("k_name"))
)
_SELECT_ONE = select(objects.c.data).where(_KEY)
_INSERT_OBJECT = insert(objects)
_UPDATE_OBJECT = update(objects).where(_KEY).values(rv=bindparam("b_rv"), data=bindparam("b_data"))
_DELETE_OBJECT = delete(objects).where(_KEY)
_INSERT_CHANGE = insert(changes)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def alembic_config(connection: Connection) -> Config:
    """An alembic Config that runs this package's migrations on ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


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
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.watch_history = watch_history
        self.broadcaster = Broadcaster()
        sync = "FULL" if durability == "full" else "NORMAL"
        self._engine = create_engine(
            f"sqlite+pysqlite:///{self.path}",
            connect_args={"check_same_thread": False, "isolation_level": None},
        )

        @event.listens_for(self._engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sync}")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

        self._conn = self._engine.connect()
        with self._conn.begin():
            command.upgrade(alembic_config(self._conn), migrate_to)
        with self._conn.begin():
            last = self._conn.execute(select(func.max(changes.c.rv))).scalar()
            last_obj = self._conn.execute(select(func.max(objects.c.rv))).scalar()
            first = self._conn.execute(select(func.min(changes.c.rv))).scalar()
        self._rv = max(last or 0, last_obj or 0)
        # Versions at or below this have been compacted; a watch from them gets 410.
        self._compacted = (first - 1) if first else self._rv
        self._writes_since_compact = 0

    # -- helpers ---------------------------------------------------------------------

    def current_resource_version(self) -> str:
        return str(self._rv)

    @staticmethod
    def _key(obj: Obj) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return meta.get("namespace") or "", meta.get("name") or ""

    def _load(self, resource: str, namespace: str, name: str) -> Obj:
        row = self._conn.execute(
            _SELECT_ONE, {"k_resource": resource, "k_namespace": namespace, "k_name": name}
        ).first()
        if row is None:
            raise NotFound(f"{resource} {name!r} not found", name=name)
        data: Obj = from_json(row[0])
        return data

    def _log_change(self, resource: str, kind: WatchEventType, obj: Obj, raw: str) -> WatchEvent:
        ns, name = self._key(obj)
        self._conn.execute(
            _INSERT_CHANGE,
            {
                "rv": self._rv,
                "resource": resource,
                "namespace": ns,
                "name": name,
                "type": kind.value,
                "data": raw,
            },
        )
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
        with self._conn.begin():
            self._conn.execute(delete(changes).where(changes.c.rv <= floor))
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
            with self._conn.begin():
                raw = self._stamp(new)
                self._conn.execute(
                    _INSERT_OBJECT,
                    {
                        "resource": resource,
                        "namespace": ns,
                        "name": name,
                        "uid": new["metadata"]["uid"],
                        "rv": self._rv,
                        "data": raw,
                    },
                )
                ev = self._log_change(resource, WatchEventType.ADDED, new, raw)
        except IntegrityError:
            raise AlreadyExists(f"{resource} {name!r} already exists", name=name) from None
        self._after_commit(ev)
        return new

    async def get(self, resource: str, namespace: str | None, name: str) -> Obj:
        with self._conn.begin():
            return self._load(resource, namespace or "", name)

    async def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
    ) -> ObjectList:
        query = select(objects.c.data).where(objects.c.resource == resource)
        if namespace is not None:
            query = query.where(objects.c.namespace == namespace)
        if field_selector and (name := field_selector.value_of("metadata.name")) is not None:
            query = query.where(objects.c.name == name)
        query = query.order_by(objects.c.namespace, objects.c.name)
        with self._conn.begin():
            rows = self._conn.execute(query).all()
            rv = str(self._rv)
        items: list[Obj] = []
        for (raw,) in rows:
            obj: Obj = from_json(raw)
            labels = obj["metadata"].get("labels") or {}
            if label_selector and not label_selector.matches(labels):
                continue
            if field_selector and not field_selector.matches(obj):
                continue
            items.append(obj)
        return ObjectList(items, rv)

    async def update(self, resource: str, obj: Obj) -> Obj:
        ns, name = self._key(obj)
        with self._conn.begin():
            old = self._load(resource, ns, name)
            self._check_rv(old, obj.get("metadata", {}).get("resourceVersion"))
            new = strategy.prepare_update(old, obj)
            ev = self._write(resource, new)
        self._after_commit(ev)
        return new

    async def update_status(self, resource: str, obj: Obj) -> Obj:
        ns, name = self._key(obj)
        with self._conn.begin():
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
    ) -> Obj:
        with self._conn.begin():
            old = self._load(resource, namespace or "", name)
            self._check_rv(old, resource_version)
            if old["metadata"].get("finalizers"):
                if old["metadata"].get("deletionTimestamp"):
                    return old
                new = strategy.mark_deleted(old, self.clock())
                ev = self._write(resource, new)
            else:
                ev = self._remove(resource, old)
                new = ev.object
        self._after_commit(ev)
        return new

    def _write(self, resource: str, new: Obj) -> WatchEvent:
        """Store an updated object, or remove it if deletion has been released."""
        if strategy.is_released(new):
            return self._remove(resource, new)
        ns, name = self._key(new)
        raw = self._stamp(new)
        self._conn.execute(
            _UPDATE_OBJECT,
            {
                "k_resource": resource,
                "k_namespace": ns,
                "k_name": name,
                "b_rv": self._rv,
                "b_data": raw,
            },
        )
        return self._log_change(resource, WatchEventType.MODIFIED, new, raw)

    def _remove(self, resource: str, old: Obj) -> WatchEvent:
        ns, name = self._key(old)
        gone = dict(old)
        raw = self._stamp(gone)
        self._conn.execute(
            _DELETE_OBJECT, {"k_resource": resource, "k_namespace": ns, "k_name": name}
        )
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
        return self._stream(sub, events, seen)

    async def _stream(
        self, sub: Subscriber, events: builtins.list[WatchEvent], seen: int
    ) -> AsyncIterator[WatchEvent]:
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
            events, seen = self._history(sub, start)
        return [e for e in events if sub.wants(e)], seen

    def _current_objects(self, sub: Subscriber) -> tuple[builtins.list[WatchEvent], int]:
        query = select(objects.c.data, objects.c.rv).where(objects.c.resource == sub.resource)
        if sub.namespace is not None:
            query = query.where(objects.c.namespace == sub.namespace)
        with self._conn.begin():
            rows = self._conn.execute(query.order_by(objects.c.rv)).all()
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
        query = select(changes.c.type, changes.c.data, changes.c.rv).where(
            changes.c.resource == sub.resource, changes.c.rv > start
        )
        if sub.namespace is not None:
            query = query.where(changes.c.namespace == sub.namespace)
        with self._conn.begin():
            rows = self._conn.execute(query.order_by(changes.c.rv)).all()
            seen = self._rv
        events = [
            WatchEvent(WatchEventType(t), from_json(raw), sub.resource, rv, raw)
            for t, raw, rv in rows
        ]
        return events, seen

    async def close(self) -> None:
        self.broadcaster.close_all()
        self._conn.close()
        self._engine.dispose()
