"""Output formats of `cnai get`: kubectl-style tables, yaml, json and name.

Tables are plain text like kubectl's: upper-case headers, columns separated by three
spaces, NAMESPACE first with ``-A``, NAME, the kind's printer columns from discovery,
then AGE. Every object passes through :func:`cnai.cli.redaction.present` before it is
rendered, so no format can print a Secret value unasked.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cnai.core.manifests import dump_yaml
from cnai.core.selectors import get_path

GAP = "   "  # kubectl's tabwriter padding between columns
NONE = "<none>"
FORMATS = ("wide", "yaml", "json", "name")


@dataclass(frozen=True)
class PrintColumn:
    """A printer column from discovery: header, dotted path, wide-only flag and type."""

    name: str
    path: str
    wide: bool = False
    type: str = "string"

    @classmethod
    def from_discovery(cls, entry: Mapping[str, Any]) -> PrintColumn:
        return cls(
            name=str(entry.get("name", "")).upper(),
            path=str(entry.get("path", "")),
            wide=bool(entry.get("wide", False)),
            type=str(entry.get("type", "string")),
        )


def columns_of(resource: Mapping[str, Any] | None, wide: bool) -> list[PrintColumn]:
    """The printer columns of a discovery entry; wide-only ones only when ``wide``."""
    entries = (resource or {}).get("columns") or []
    columns = [PrintColumn.from_discovery(c) for c in entries if isinstance(c, Mapping)]
    return [c for c in columns if wide or not c.wide]


def human_age(delta_seconds: float) -> str:
    """A duration the way kubectl prints ages: 45s, 2m30s, 15m, 5h10m, 30h, 3d4h, 40d, 2y."""
    seconds = int(delta_seconds)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"  # up to a second of clock skew still reads as "now"
    if seconds < 120:
        return f"{seconds}s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if minutes < 10:
        return _pair(minutes, "m", seconds % 60, "s")
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return _pair(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _pair(days, "d", hours % 24, "h")
    if days < 365 * 2:
        return f"{days}d"
    if days < 365 * 8:
        return _pair(days // 365, "y", days % 365, "d")
    return f"{days // 365}y"


def _pair(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}{small}{small_unit}" if small else f"{big}{big_unit}"


def parse_time(value: Any) -> datetime | None:
    """An API timestamp (RFC 3339, UTC) as an aware datetime; None if absent or bad."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def age_of(value: Any, now: datetime) -> str:
    when = parse_time(value)
    return human_age((now - when).total_seconds()) if when else "<unknown>"


def cell(value: Any, type_: str, now: datetime) -> str:
    """One table cell: counts, ages, booleans and lists rendered the way kubectl does."""
    if type_ == "count":
        return str(len(value)) if isinstance(value, Mapping | list) else "0"
    if type_ == "date":
        return age_of(value, now) if value else NONE
    if value is None or value == "" or value == [] or value == {}:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return str(value)


def headers(columns: Sequence[PrintColumn], with_namespace: bool) -> list[str]:
    first = ["NAMESPACE"] if with_namespace else []
    return [*first, "NAME", *(c.name for c in columns), "AGE"]


def row(
    obj: Mapping[str, Any], columns: Sequence[PrintColumn], with_namespace: bool, now: datetime
) -> list[str]:
    """The table row of one (already redacted) object."""
    meta = obj.get("metadata") or {}
    first = [str(meta.get("namespace") or NONE)] if with_namespace else []
    values = [cell(get_path(obj, c.path), c.type, now) for c in columns]
    return [*first, str(meta.get("name", "")), *values, age_of(meta.get("creationTimestamp"), now)]


def widths(rows: Sequence[Sequence[str]]) -> list[int]:
    return [max(len(r[i]) for r in rows) for i in range(len(rows[0]))] if rows else []


def align(cells: Sequence[str], col_widths: Sequence[int]) -> str:
    """Pad every cell but the last to its column's width (no trailing blanks)."""
    padded = [c.ljust(w) for c, w in zip(cells[:-1], col_widths, strict=False)]
    return GAP.join([*padded, cells[-1]]) if cells else ""


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a table whose first row is the header."""
    col_widths = widths(rows)
    return [align(r, col_widths) for r in rows]


def as_list(items: Sequence[Mapping[str, Any]], resource_version: str = "") -> dict[str, Any]:
    """Several objects as one printable ``List``, like ``kubectl get -o yaml``."""
    return {
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": resource_version},
        "items": [dict(i) for i in items],
    }


def render(obj: Mapping[str, Any], fmt: str) -> str:
    """An object (or List) as yaml or json text, ending in a newline."""
    if fmt == "json":
        return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    return dump_yaml(dict(obj))


def name_of(obj: Mapping[str, Any]) -> str:
    """``kind/name``, what ``-o name`` prints and what apply and create report."""
    meta = obj.get("metadata") or {}
    return f"{str(obj.get('kind', '')).lower()}/{meta.get('name', '')}"
