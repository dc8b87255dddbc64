"""The tracking store: run groups, runs, params, tags and metric histories.

It lives in its own SQLite file (``tracking.db`` beside the object store's
``state.db``): metric writes are heavy, and they must never take the object store's
lock or delay a watch or a reconcile.

Writes go through one writer thread that owns the write connection. Whatever arrives
together is committed in one transaction (group commit), each request inside its own
savepoint so that one bad request fails alone. A request is answered only once its
transaction has committed, so a point the server acknowledged survives a crash of the
server (SQLite's write-ahead log). Reads run on other threads with their own
connections and never wait for the writer.

Metric storage: a *series* is one metric of one run. Its points are stored in chunks,
one row per series per commit, each holding three little-endian arrays (steps as int64,
values as float64, timestamps as int64 milliseconds). Reading a history is one range
scan of the series' chunks and a concatenation; a chunk row costs the same whether it
holds one point or ten thousand, so batching on the way in pays off on the way out.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from alembic import command
from alembic.config import Config
from numpy.typing import NDArray
from sqlalchemy import create_engine

from cnai.core.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    InsufficientStorage,
    NotFound,
    ServiceUnavailable,
)
from cnai.tracking.search import (
    ALL_RUNS,
    NEWEST_FIRST,
    RunFilter,
    RunOrder,
    order_sql,
    where_sql,
)

log = logging.getLogger("cnai.tracking")

MIGRATIONS = Path(__file__).parent / "migrations"
DEFAULT_GROUP = "Default"  # MLflow's default experiment name
# Run states, as MLflow names them.
RUN_STATES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
MAX_KEY_LENGTH = 250  # MLflow's limit for metric, param and tag keys
MAX_PARAM_VALUE_LENGTH = 6000  # MLflow's
MAX_TAG_VALUE_LENGTH = 8000  # MLflow's
# How many queued requests one transaction takes at most.
GROUP_COMMIT_MAX = 512

T = TypeVar("T")
# (namespace, run id, metric keys) of a committed log call: see TrackingStore.add_listener.
LogListener = Callable[[str, str, frozenset[str]], None]
Int64Array = NDArray[np.int64]
Float64Array = NDArray[np.float64]


@dataclass(frozen=True)
class Points:
    """Points of one metric: steps, values and timestamps (ms), all the same length."""

    steps: Int64Array
    values: Float64Array
    timestamps: Int64Array

    def __len__(self) -> int:
        return len(self.values)

    @classmethod
    def empty(cls) -> Points:
        return cls(np.empty(0, np.int64), np.empty(0, np.float64), np.empty(0, np.int64))

    @classmethod
    def of(
        cls,
        key: str,
        steps: Sequence[int] | Int64Array,
        values: Sequence[float] | Float64Array,
        timestamps: Sequence[int] | Int64Array,
    ) -> Points:
        """Checked points of metric ``key``: equal lengths, finite values, integer steps
        and timestamps. Errors name the metric and the rule."""
        check_key("metric", key)
        try:
            s = np.asarray(steps, dtype=np.int64)
            v = np.asarray(values, dtype=np.float64)
            t = np.asarray(timestamps, dtype=np.int64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise BadRequest(
                f"metrics[{key}]: steps and timestamps must be integers and values numbers ({exc})"
            ) from None
        if not (s.ndim == v.ndim == t.ndim == 1) or not (len(s) == len(v) == len(t)):
            raise BadRequest(
                f"metrics[{key}]: steps, values and timestamps must be lists of equal "
                f"length (got {s.size}, {v.size}, {t.size})"
            )
        finite = np.isfinite(v)
        if not finite.all():
            at = int(np.argmin(finite))
            raise BadRequest(
                f"metrics[{key}].values[{at}]: {v[at]} is not a finite number (NaN and "
                "infinity are refused)"
            )
        if len(t) and int(t.min()) < 0:
            raise BadRequest(f"metrics[{key}].timestamps: must be milliseconds since 1970")
        return cls(s, v, t)

    def thinned(self, most: int) -> Points:
        """At most ``most`` (2 or more) of these points, evenly spaced by position, the
        first and the last kept: a chart's worth of a long history."""
        if len(self) <= most:
            return self
        keep = np.unique(np.linspace(0, len(self) - 1, most).round().astype(np.int64))
        return Points(self.steps[keep], self.values[keep], self.timestamps[keep])


@dataclass(frozen=True)
class Latest:
    """A metric's point with the highest step (then the latest timestamp)."""

    value: float
    step: int
    timestamp: int


@dataclass(frozen=True)
class Owner:
    """The resource that produced a run (empty for an ad-hoc run)."""

    kind: str = ""
    name: str = ""
    uid: str = ""


@dataclass(frozen=True)
class RunGroup:
    """A grouping of runs (MLflow calls it an experiment)."""

    id: int
    namespace: str
    name: str
    lifecycle: str
    created_ms: int
    tags: Mapping[str, str]


@dataclass(frozen=True)
class Run:
    """A run as stored, with its params, tags and the latest value of each metric."""

    id: str
    namespace: str
    group_id: int
    name: str
    status: str
    start_ms: int
    end_ms: int | None
    owner: Owner
    artifact_uri: str
    lifecycle: str
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    latest: Mapping[str, Latest] = field(default_factory=dict)


def check_key(what: str, key: str) -> None:
    if not isinstance(key, str) or not key:
        raise BadRequest(f"{what} key: must be a non-empty string")
    if len(key) > MAX_KEY_LENGTH:
        raise BadRequest(f"{what} key {key[:40]!r}...: longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/") or ".." in key.split("/"):
        raise BadRequest(f"{what} key {key!r}: must not start with / or contain ..")


def now_ms() -> int:
    return int(time.time() * 1000)


def migrate(path: Path) -> None:
    """Bring the tracking database at ``path`` to the latest schema."""
    engine = create_engine(f"sqlite+pysqlite:///{path}")
    try:
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    finally:
        engine.dispose()


def _connect(path: Path, durability: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={'FULL' if durability == 'full' else 'NORMAL'}")
    db.execute("PRAGMA busy_timeout=5000")
    return db


# -- the writer ------------------------------------------------------------------------


class _Appends:
    """Metric points accepted in the open transaction, merged per series: each series
    gets one chunk per commit however many requests wrote to it."""

    def __init__(self) -> None:
        self.points: dict[tuple[str, str], list[Points]] = defaultdict(list)

    def add(self, run_id: str, key: str, points: Points) -> None:
        if len(points):
            self.points[(run_id, key)].append(points)


# One queued write: what to do with the connection, and where its answer goes.
_Op = Callable[[sqlite3.Connection, _Appends], Any]


class _Writer:
    """The thread that owns the write connection (see the module docstring)."""

    def __init__(self, path: Path, durability: str) -> None:
        self._db = _connect(path, durability)
        self._queue: queue.SimpleQueue[
            tuple[_Op, asyncio.Future[Any], asyncio.AbstractEventLoop] | None
        ] = queue.SimpleQueue()
        # (run, key) -> [series id, chunks written]; forgotten when a commit fails.
        self._series: dict[tuple[str, str], list[int]] = {}
        self._thread = threading.Thread(target=self._run, name="tracking-writer", daemon=True)
        self._thread.start()

    def submit(self, op: _Op) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put((op, future, loop))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._db.close()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group = [item]
            while len(group) < GROUP_COMMIT_MAX:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._commit(group)
                    return
                group.append(more)
            self._commit(group)

    def _commit(
        self, group: list[tuple[_Op, asyncio.Future[Any], asyncio.AbstractEventLoop]]
    ) -> None:
        db, appends = self._db, _Appends()
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for op, _, _ in group:
                db.execute("SAVEPOINT request")
                try:
                    result = op(db, appends)
                except Exception as exc:  # this request fails alone
                    db.execute("ROLLBACK TO request")
                    db.execute("RELEASE request")
                    outcomes.append((None, exc))
                    continue
                db.execute("RELEASE request")
                outcomes.append((result, None))
            self._flush(db, appends)
            db.execute("COMMIT")
        except Exception as exc:
            log.exception("tracking commit failed")
            if db.in_transaction:
                db.execute("ROLLBACK")
            self._series.clear()
            failed: ApiError = (
                InsufficientStorage("the tracking store's disk is full; nothing was written")
                if _disk_full(exc)
                else ServiceUnavailable(f"the tracking store could not commit: {exc}")
            )
            outcomes = [(None, failed)] * len(group)
        for (_, future, loop), (result, error) in zip(group, outcomes, strict=True):
            loop.call_soon_threadsafe(_settle, future, result, error)

    def _flush(self, db: sqlite3.Connection, appends: _Appends) -> None:
        for (run_id, key), parts in appends.points.items():
            points = parts[0] if len(parts) == 1 else _concat(parts)
            known = self._series.get((run_id, key))
            if known is None:
                row = db.execute(
                    "SELECT id, chunks FROM series WHERE run_id = ? AND key = ?", (run_id, key)
                ).fetchone()
                if row is None:
                    cur = db.execute(
                        "INSERT INTO series (run_id, key) VALUES (?, ?)", (run_id, key)
                    )
                    row = (cur.lastrowid, 0)
                known = self._series[(run_id, key)] = [int(row[0]), int(row[1])]
            series_id, seq = known
            db.execute(
                "INSERT INTO chunks (series_id, seq, steps, vals, stamps) VALUES (?, ?, ?, ?, ?)",
                (
                    series_id,
                    seq,
                    points.steps.astype("<i8").tobytes(),
                    points.values.astype("<f8").tobytes(),
                    points.timestamps.astype("<i8").tobytes(),
                ),
            )
            known[1] += 1
            last = int(np.lexsort((points.timestamps, points.steps))[-1])
            step, ms = int(points.steps[last]), int(points.timestamps[last])
            db.execute(
                """UPDATE series SET points = points + ?, chunks = chunks + 1,
                       last_value = CASE WHEN last_step IS NULL OR ? > last_step
                           OR (? = last_step AND ? >= last_ms) THEN ? ELSE last_value END,
                       last_ms = CASE WHEN last_step IS NULL OR ? > last_step
                           OR (? = last_step AND ? >= last_ms) THEN ? ELSE last_ms END,
                       last_step = CASE WHEN last_step IS NULL OR ? > last_step
                           THEN ? ELSE last_step END
                   WHERE id = ?""",
                (
                    len(points),
                    step, step, ms, float(points.values[last]),
                    step, step, ms, ms,
                    step, step,
                    series_id,
                ),
            )  # fmt: skip


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and (
        getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    )


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _concat(parts: Sequence[Points]) -> Points:
    return Points(
        np.concatenate([p.steps for p in parts]),
        np.concatenate([p.values for p in parts]),
        np.concatenate([p.timestamps for p in parts]),
    )


# -- the store -------------------------------------------------------------------------


class TrackingStore:
    """Runs and their records in ``path`` (see the module docstring)."""

    def __init__(
        self,
        path: Path | str,
        *,
        artifact_root: Path | str | None = None,
        durability: str = "normal",
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        root = artifact_root or self.path.parent / "artifacts"
        # Runs' artifact URIs: a local directory's file:// URI, or an fsspec URL as given.
        self.artifact_root = root.as_uri() if isinstance(root, Path) else str(root).rstrip("/")
        self.durability = durability
        migrate(self.path)
        self._writer = _Writer(self.path, durability)
        self._local = threading.local()
        self._listeners: list[LogListener] = []

    def add_listener(self, listener: LogListener) -> None:
        """Call ``listener(namespace, run_id, metric_keys)`` on the event loop after
        every committed :meth:`log` that wrote metric points (e.g. to wake a controller
        that follows a run's metrics). A failing listener is logged and skipped."""
        self._listeners.append(listener)

    def _tell(self, namespace: str, run_id: str, keys: frozenset[str]) -> None:
        for listener in list(self._listeners):
            try:
                listener(namespace, run_id, keys)
            except Exception:
                log.exception("tracking: a log listener failed for run %s", run_id)

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.close)

    # -- reading (on a worker thread, with that thread's own connection) ---------------

    def _reader(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = _connect(self.path, self.durability)
        return db

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.to_thread(lambda: fn(self._reader()))

    # -- run groups --------------------------------------------------------------------

    async def create_group(
        self, namespace: str, name: str, tags: Mapping[str, str] | None = None
    ) -> RunGroup:
        if not name or len(name) > 500:
            raise BadRequest("name: a run group needs a name of 1 to 500 characters")
        created = now_ms()
        body = json.dumps(dict(tags or {}))

        def op(db: sqlite3.Connection, _: _Appends) -> int:
            try:
                cur = db.execute(
                    "INSERT INTO run_groups (namespace, name, created_ms, tags)"
                    " VALUES (?, ?, ?, ?)",
                    (namespace, name, created, body),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(
                    f"run group {name!r} already exists in namespace {namespace}"
                ) from None
            return int(cur.lastrowid or 0)

        group_id = await self._writer.submit(op)
        return RunGroup(group_id, namespace, name, "active", created, dict(tags or {}))

    async def group(
        self, namespace: str, *, id: int | None = None, name: str | None = None
    ) -> RunGroup:
        """A run group by id or by name; NotFound names what was asked."""

        def fn(db: sqlite3.Connection) -> Any:
            if id is not None:
                return db.execute(
                    "SELECT * FROM run_groups WHERE id = ? AND namespace = ?", (id, namespace)
                ).fetchone()
            return db.execute(
                "SELECT * FROM run_groups WHERE name = ? AND namespace = ?", (name, namespace)
            ).fetchone()

        row = await self._read(fn)
        if row is None:
            what = f"id {id}" if id is not None else f"name {name!r}"
            raise NotFound(f"run group with {what} not found in namespace {namespace}")
        return _group(row)

    async def ensure_group(self, namespace: str, name: str) -> RunGroup:
        """The run group ``name``, created on first use."""
        try:
            return await self.group(namespace, name=name)
        except NotFound:
            try:
                return await self.create_group(namespace, name)
            except AlreadyExists:  # created meanwhile
                return await self.group(namespace, name=name)

    async def default_group(self, namespace: str) -> RunGroup:
        """The namespace's ``Default`` run group, created on first use."""
        return await self.ensure_group(namespace, DEFAULT_GROUP)

    async def list_groups(self, namespace: str) -> list[RunGroup]:
        rows = await self._read(
            lambda db: db.execute(
                "SELECT * FROM run_groups WHERE namespace = ? ORDER BY id", (namespace,)
            ).fetchall()
        )
        return [_group(r) for r in rows]

    # -- runs --------------------------------------------------------------------------

    async def create_run(
        self,
        namespace: str,
        *,
        group_id: int | None = None,
        name: str = "",
        owner: Owner = Owner(),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        start_ms: int | None = None,
    ) -> Run:
        group = (
            await self.default_group(namespace)
            if group_id is None
            else await self.group(namespace, id=group_id)
        )
        run_id = uuid.uuid4().hex
        name = name or f"run-{run_id[:8]}"
        start = start_ms if start_ms is not None else now_ms()
        uri = f"{self.artifact_root}/{namespace}/{run_id}"
        params, tags = _checked_params(params or {}), _checked_tags(tags or {})

        def op(db: sqlite3.Connection, _: _Appends) -> None:
            db.execute(
                """INSERT INTO runs (id, namespace, group_id, name, status, start_ms,
                       owner_kind, owner_name, owner_uid, artifact_uri)
                   VALUES (?, ?, ?, ?, 'RUNNING', ?, ?, ?, ?, ?)""",
                (run_id, namespace, group.id, name, start, owner.kind, owner.name, owner.uid, uri),
            )
            _write_params(db, run_id, params)
            _write_tags(db, run_id, tags)

        await self._writer.submit(op)
        return Run(
            run_id, namespace, group.id, name, "RUNNING", start, None, owner, uri, "active",
            dict(params), dict(tags),
        )  # fmt: skip

    async def update_run(
        self,
        namespace: str,
        run_id: str,
        *,
        status: str | None = None,
        end_ms: int | None = None,
        name: str | None = None,
    ) -> Run:
        if status is not None and status not in RUN_STATES:
            raise BadRequest(f"status: must be one of {', '.join(RUN_STATES)}, not {status!r}")

        def op(db: sqlite3.Connection, _: _Appends) -> None:
            _owned(db, namespace, run_id)
            if status is not None:
                db.execute("UPDATE runs SET status = ? WHERE id = ?", (status, run_id))
            if end_ms is not None:
                db.execute("UPDATE runs SET end_ms = ? WHERE id = ?", (end_ms, run_id))
            if name:
                db.execute("UPDATE runs SET name = ? WHERE id = ?", (name, run_id))

        await self._writer.submit(op)
        return await self.get_run(namespace, run_id)

    async def log(
        self,
        namespace: str,
        run_id: str,
        *,
        metrics: Mapping[str, Points] | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        batch_id: str | None = None,
    ) -> int:
        """Record points, params and tags of a run together; returns the points written.
        Answered once committed. A param may be logged again only with the same value.

        ``batch_id`` makes the call idempotent: a batch already applied to this run is
        not applied again (a client resends a batch whose answer it lost when the
        server died after committing it)."""
        params, tags = _checked_params(params or {}), _checked_tags(tags or {})
        metrics = dict(metrics or {})
        if batch_id is not None and not (0 < len(batch_id) <= 64):
            raise BadRequest("batchId: must be 1 to 64 characters")
        count = sum(len(p) for p in metrics.values())

        def op(db: sqlite3.Connection, appends: _Appends) -> int:
            _owned(db, namespace, run_id)  # finished runs still take late points, as in MLflow
            if batch_id is not None:
                seen = db.execute(
                    "SELECT points FROM batches WHERE run_id = ? AND batch_id = ?",
                    (run_id, batch_id),
                ).fetchone()
                if seen is not None:
                    return int(seen[0])
                db.execute(
                    "INSERT INTO batches (run_id, batch_id, points) VALUES (?, ?, ?)",
                    (run_id, batch_id, count),
                )
            _write_params(db, run_id, params)
            _write_tags(db, run_id, tags)
            for key, points in metrics.items():
                appends.add(run_id, key, points)
            return count

        written: int = await self._writer.submit(op)
        if written and metrics:
            self._tell(namespace, run_id, frozenset(metrics))
        return written

    async def get_run(self, namespace: str, run_id: str) -> Run:
        runs = await self._read(
            lambda db: _runs(db, "r.id = ? AND r.namespace = ?", (run_id, namespace))
        )
        if not runs:
            raise NotFound(f"run {run_id!r} not found in namespace {namespace}")
        return runs[0]

    async def list_runs(
        self,
        namespace: str,
        *,
        group_ids: Iterable[int] | None = None,
        owner_uid: str | None = None,
        limit: int = 1000,
        offset: int = 0,
    ) -> list[Run]:
        """Runs of a namespace, newest first, optionally of some groups or one owner."""
        groups = tuple(int(g) for g in group_ids) if group_ids is not None else None
        where = RunFilter(group_ids=groups, owner_uid=owner_uid or "")
        found, _ = await self.search_runs(namespace, where, limit=limit, offset=offset, count=False)
        return found

    async def search_runs(
        self,
        namespace: str,
        where: RunFilter = ALL_RUNS,
        order: RunOrder = NEWEST_FIRST,
        *,
        limit: int = 1000,
        offset: int = 0,
        count: bool = True,
    ) -> tuple[list[Run], int]:
        """One page of the runs ``where`` selects, in ``order``, and how many it selects
        in all (-1 unless ``count``), read together (see :mod:`cnai.tracking.search`)."""
        cond, args = where_sql(namespace, where)
        terms, order_args = order_sql(order, now_ms())
        page = f"{cond} ORDER BY {terms} LIMIT {int(limit)} OFFSET {int(offset)}"

        def fn(db: sqlite3.Connection) -> tuple[list[Run], int]:
            runs = _runs(db, page, (*args, *order_args))
            if not count:
                return runs, -1
            sql = f"SELECT COUNT(*) FROM runs r WHERE {cond}"  # noqa: S608 (fixed fragments)
            return runs, int(db.execute(sql, args).fetchone()[0])

        return await self._read(fn)

    # -- metric histories --------------------------------------------------------------

    async def history(self, namespace: str, run_id: str, key: str) -> Points:
        """Every point of metric ``key`` of a run, in the order logged."""
        found = await self.histories(namespace, [run_id], key)
        return found[run_id]

    async def histories(
        self, namespace: str, run_ids: Sequence[str], key: str
    ) -> dict[str, Points]:
        """The history of metric ``key`` for each of ``run_ids`` (empty where a run
        never logged it). NotFound if a run is not in the namespace."""

        def fn(db: sqlite3.Connection) -> dict[str, Points]:
            out: dict[str, Points] = {}
            for run_id in run_ids:
                _owned(db, namespace, run_id)
                rows = db.execute(
                    """SELECT c.steps, c.vals, c.stamps FROM series s
                       JOIN chunks c ON c.series_id = s.id
                       WHERE s.run_id = ? AND s.key = ? ORDER BY c.seq""",
                    (run_id, key),
                ).fetchall()
                out[run_id] = _decode(rows)
            return out

        return await self._read(fn)


# -- helpers ---------------------------------------------------------------------------


def _checked(what: str, values: Mapping[str, Any], limit: int) -> dict[str, str]:
    """``values`` as strings, each key valid and each value at most ``limit`` long."""
    out = {}
    for key, value in values.items():
        check_key(what, key)
        text = str(value)
        if len(text) > limit:
            raise BadRequest(f"{what}s[{key}]: value longer than {limit} characters")
        out[key] = text
    return out


def _checked_params(params: Mapping[str, Any]) -> dict[str, str]:
    return _checked("param", params, MAX_PARAM_VALUE_LENGTH)


def _checked_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    return _checked("tag", tags, MAX_TAG_VALUE_LENGTH)


def _owned(db: sqlite3.Connection, namespace: str, run_id: str) -> str:
    """The run's status; NotFound unless the run exists in ``namespace``."""
    row = db.execute(
        "SELECT status FROM runs WHERE id = ? AND namespace = ?", (run_id, namespace)
    ).fetchone()
    if row is None:
        raise NotFound(f"run {run_id!r} not found in namespace {namespace}")
    return str(row[0])


def _write_params(db: sqlite3.Connection, run_id: str, params: Mapping[str, str]) -> None:
    for key, value in params.items():
        row = db.execute(
            "SELECT value FROM params WHERE run_id = ? AND key = ?", (run_id, key)
        ).fetchone()
        if row is None:
            db.execute(
                "INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)", (run_id, key, value)
            )
        elif row[0] != value:
            raise BadRequest(
                f"params[{key}]: already logged as {row[0]!r}; a param is written once and "
                f"cannot change to {value!r}"
            )


def _write_tags(db: sqlite3.Connection, run_id: str, tags: Mapping[str, str]) -> None:
    db.executemany(
        "INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) "
        "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
        [(run_id, k, v) for k, v in tags.items()],
    )


def _group(row: tuple[Any, ...]) -> RunGroup:
    id_, namespace, name, lifecycle, created, tags = row
    return RunGroup(int(id_), namespace, name, lifecycle, int(created), json.loads(tags))


def _runs(db: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[Run]:
    rows = db.execute(
        f"""SELECT r.id, r.namespace, r.group_id, r.name, r.status, r.start_ms, r.end_ms,
                   r.owner_kind, r.owner_name, r.owner_uid, r.artifact_uri, r.lifecycle
            FROM runs r WHERE {where}""",  # noqa: S608 (fixed fragments, ? placeholders)
        args,
    ).fetchall()
    if not rows:
        return []
    ids = [r[0] for r in rows]
    marks = ",".join("?" * len(ids))
    params: dict[str, dict[str, str]] = defaultdict(dict)
    for run_id, k, v in db.execute(
        f"SELECT run_id, key, value FROM params WHERE run_id IN ({marks})",  # noqa: S608
        ids,
    ):
        params[run_id][k] = v
    tags: dict[str, dict[str, str]] = defaultdict(dict)
    for run_id, k, v in db.execute(
        f"SELECT run_id, key, value FROM tags WHERE run_id IN ({marks})",  # noqa: S608
        ids,
    ):
        tags[run_id][k] = v
    latest: dict[str, dict[str, Latest]] = defaultdict(dict)
    for run_id, k, value, step, ms in db.execute(
        f"""SELECT run_id, key, last_value, last_step, last_ms FROM series
            WHERE run_id IN ({marks}) AND points > 0""",  # noqa: S608
        ids,
    ):
        latest[run_id][k] = Latest(float(value), int(step), int(ms))
    return [
        Run(
            r[0],
            r[1],
            int(r[2]),
            r[3],
            r[4],
            int(r[5]),
            r[6],
            Owner(r[7], r[8], r[9]),
            r[10],
            r[11],
            params.get(r[0], {}),
            tags.get(r[0], {}),
            latest.get(r[0], {}),
        )
        for r in rows
    ]


def _decode(rows: Sequence[tuple[bytes, bytes, bytes]]) -> Points:
    if not rows:
        return Points.empty()
    steps = b"".join(r[0] for r in rows)
    values = b"".join(r[1] for r in rows)
    stamps = b"".join(r[2] for r in rows)
    return Points(
        np.frombuffer(steps, dtype="<i8").astype(np.int64, copy=False),
        np.frombuffer(values, dtype="<f8").astype(np.float64, copy=False),
        np.frombuffer(stamps, dtype="<i8").astype(np.int64, copy=False),
    )
