"""Searching runs: the runs list's filters, order and page, parsed from a query string
and turned into SQL over the tracking store's ``runs`` and ``series`` tables.

The dashboard's runs page asks for one page of runs at a time (``limit``, ``offset``),
filtered by run group and by text and sorted by a column, a metric's latest value
included, and gets the number of matching runs with it (``total``) to draw its pager. So
a namespace of thousands of runs costs the page one small request, whatever its size.

Query parameters of ``GET .../runs`` (all optional):

- ``group``: a run group's name; ``ownerUid``: the owning resource's uid.
- ``q``: text the run's name contains (case-insensitive), or a prefix of its id.
- ``ids``: comma-separated run ids, at most :data:`MAX_IDS` (the compare page's runs).
- ``sort``: ``startTime``, ``endTime``, ``duration``, ``name``, ``status`` or
  ``metrics.KEY`` (a metric's latest value), ``-`` first for descending; default
  ``-startTime``. Runs without the value sort last either way; ties by run id.
- ``limit`` (1 to 10,000, default 1,000) and ``offset`` (from 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnai.core.errors import BadRequest

MAX_LIMIT = 10_000
DEFAULT_LIMIT = 1_000
MAX_IDS = 100  # ids travel in the URL: 100 run ids are about 3.3 kB
MAX_TEXT = 500
METRIC_PREFIX = "metrics."
# The sortable columns and their SQL over ``runs r``; keep in sync with the docstring.
COLUMNS = {
    "startTime": "r.start_ms",
    "endTime": "r.end_ms",
    "duration": "(COALESCE(r.end_ms, ?) - r.start_ms)",
    "name": "r.name COLLATE NOCASE",
    "status": "r.status",
}


@dataclass(frozen=True)
class RunFilter:
    """Which runs of a namespace: all of these that are set must hold."""

    group_ids: tuple[int, ...] | None = None
    owner_uid: str = ""
    text: str = ""
    ids: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RunOrder:
    """A sort column (a key of :data:`COLUMNS`, or ``metric`` set for a metric)."""

    column: str = "startTime"
    metric: str = ""
    descending: bool = True

    @classmethod
    def parse(cls, text: str) -> RunOrder:
        descending = text.startswith("-")
        name = text[1:] if descending else text
        if name.startswith(METRIC_PREFIX) and len(name) > len(METRIC_PREFIX):
            return cls("metric", name[len(METRIC_PREFIX) :], descending)
        if name not in COLUMNS:
            allowed = ", ".join([*COLUMNS, f"{METRIC_PREFIX}KEY"])
            raise BadRequest(f"sort: {text!r} is not one of {allowed} (with - for descending)")
        return cls(name, "", descending)


ALL_RUNS = RunFilter()
NEWEST_FIRST = RunOrder()


@dataclass(frozen=True)
class RunQuery:
    """A parsed ``GET .../runs`` query; ``group`` is still a name, to be resolved."""

    group: str = ""
    owner_uid: str = ""
    text: str = ""
    ids: tuple[str, ...] | None = None
    order: RunOrder = NEWEST_FIRST
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> RunQuery:
        """Checked parameters; a bad one is a BadRequest naming it and its rule."""
        text = params.get("q", "").strip()
        if len(text) > MAX_TEXT:
            raise BadRequest(f"q: at most {MAX_TEXT} characters")
        return cls(
            group=params.get("group", ""),
            owner_uid=params.get("ownerUid", ""),
            text=text,
            ids=_ids(params.get("ids")),
            order=RunOrder.parse(params.get("sort") or "-startTime"),
            limit=_number(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
            offset=_number(params, "offset", 0, 0, None),
        )

    def filter(self, group_ids: tuple[int, ...] | None) -> RunFilter:
        return RunFilter(group_ids, self.owner_uid, self.text, self.ids)


def _number(params: Mapping[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if value < low or (high is not None and value > high):
        bound = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise BadRequest(f"{name}: must be a whole number {bound}, not {raw!r}")
    return value


def _ids(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    ids = tuple(i.strip() for i in raw.split(","))
    if not all(ids):
        raise BadRequest("ids: must be run ids separated by commas, none empty")
    if len(ids) > MAX_IDS:
        raise BadRequest(f"ids: at most {MAX_IDS} runs per request, not {len(ids)}")
    return ids


def where_sql(namespace: str, where: RunFilter) -> tuple[str, list[Any]]:
    """The SQL condition over ``runs r`` and its arguments."""
    parts, args = ["r.namespace = ?"], list[Any]([namespace])
    if where.group_ids is not None:
        parts.append(f"r.group_id IN ({','.join('?' * len(where.group_ids)) or 'NULL'})")
        args.extend(int(g) for g in where.group_ids)
    if where.owner_uid:
        parts.append("r.owner_uid = ?")
        args.append(where.owner_uid)
    if where.text:
        # instr, not LIKE: the user's % and _ are text, not wildcards.
        parts.append("(instr(lower(r.name), ?) > 0 OR substr(r.id, 1, ?) = ?)")
        args.extend([where.text.lower(), len(where.text), where.text.lower()])
    if where.ids is not None:
        parts.append(f"r.id IN ({','.join('?' * len(where.ids)) or 'NULL'})")
        args.extend(where.ids)
    return " AND ".join(parts), args


def order_sql(order: RunOrder, now_ms: int) -> tuple[str, list[Any]]:
    """The ``ORDER BY`` terms and their arguments: missing values last, ties by id."""
    if order.column == "metric":
        expr = (
            "(SELECT s.last_value FROM series s"
            " WHERE s.run_id = r.id AND s.key = ? AND s.points > 0)"
        )
        args: list[Any] = [order.metric] * 2
    else:
        expr = COLUMNS[order.column]
        args = [now_ms] * 2 if "?" in expr else []
    direction = "DESC" if order.descending else "ASC"
    return f"({expr}) IS NULL, {expr} {direction}, r.id", args
