"""Table layout, ages, cells and column extraction of `cnai get`'s printers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cnai.cli.printers import (
    PrintColumn,
    age_of,
    as_list,
    cell,
    columns_of,
    headers,
    human_age,
    name_of,
    render,
    row,
    table,
)

NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)


def ts(ago: timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        pytest.param(-5, "<invalid>", id="far-future-timestamp-is-invalid"),
        pytest.param(-1, "0s", id="one-second-of-clock-skew-reads-as-now"),
        pytest.param(5, "5s", id="seconds-under-two-minutes"),
        pytest.param(119, "119s", id="still-seconds-just-under-two-minutes"),
        pytest.param(150, "2m30s", id="minutes-and-seconds-under-ten-minutes"),
        pytest.param(180, "3m", id="whole-minutes-drop-the-seconds"),
        pytest.param(45 * 60, "45m", id="minutes-under-three-hours"),
        pytest.param(2 * 3600 + 59 * 60, "179m", id="just-under-three-hours-is-minutes"),
        pytest.param(5 * 3600 + 10 * 60, "5h10m", id="hours-and-minutes-under-eight-hours"),
        pytest.param(2 * 3600 * 10, "20h", id="whole-hours-under-two-days"),
        pytest.param(3 * 86400 + 4 * 3600, "3d4h", id="days-and-hours-under-eight-days"),
        pytest.param(4 * 86400, "4d", id="whole-days"),
        pytest.param(40 * 86400, "40d", id="days-under-two-years"),
        pytest.param((3 * 365 + 10) * 86400, "3y10d", id="years-and-days-under-eight-years"),
        pytest.param(10 * 365 * 86400, "10y", id="years"),
    ],
)
def test_ages_read_like_kubectl(seconds: int, expected: str) -> None:
    assert human_age(seconds) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(ts(timedelta(minutes=3)), "3m", id="rfc3339-with-z"),
        pytest.param("2025-06-01T11:59:55+00:00", "5s", id="rfc3339-with-offset"),
        pytest.param(None, "<unknown>", id="missing-timestamp"),
        pytest.param("yesterday", "<unknown>", id="unparseable-timestamp"),
    ],
)
def test_age_of_timestamps(value: Any, expected: str) -> None:
    assert age_of(value, NOW) == expected


@pytest.mark.parametrize(
    ("value", "type_", "expected"),
    [
        pytest.param({"a": "x", "b": "y"}, "count", "2", id="count-of-mapping-keys"),
        pytest.param(None, "count", "0", id="count-of-missing-is-zero"),
        pytest.param(ts(timedelta(hours=5)), "date", "5h", id="date-shows-an-age"),
        pytest.param(None, "date", "<none>", id="missing-date-is-none"),
        pytest.param(None, "string", "<none>", id="missing-value-is-none"),
        pytest.param("", "string", "<none>", id="empty-string-is-none"),
        pytest.param(True, "string", "true", id="booleans-lower-case"),
        pytest.param(["a", "b"], "string", "a,b", id="lists-comma-joined"),
        pytest.param(3, "integer", "3", id="numbers-as-text"),
    ],
)
def test_cells(value: Any, type_: str, expected: str) -> None:
    assert cell(value, type_, NOW) == expected


DISCOVERY = {
    "name": "trainjobs",
    "columns": [
        {"name": "PHASE", "path": "status.phase", "wide": False, "type": "string"},
        {"name": "WORKERS", "path": "spec.workers", "wide": True, "type": "integer"},
        {"name": "Data", "path": "data", "type": "count"},
    ],
}


def test_wide_columns_only_with_wide() -> None:
    assert [c.name for c in columns_of(DISCOVERY, wide=False)] == ["PHASE", "DATA"]
    assert [c.name for c in columns_of(DISCOVERY, wide=True)] == ["PHASE", "WORKERS", "DATA"]
    assert columns_of(None, wide=True) == []


def test_row_extracts_dotted_paths_and_ends_with_age() -> None:
    obj = {
        "metadata": {"name": "j1", "namespace": "ml", "creationTimestamp": ts(timedelta(days=4))},
        "spec": {"workers": 4},
        "status": {"phase": "Running"},
        "data": {"k": "v"},
    }
    cols = columns_of(DISCOVERY, wide=True)
    assert row(obj, cols, with_namespace=True, now=NOW) == ["ml", "j1", "Running", "4", "1", "4d"]
    assert row({"metadata": {"name": "j2"}}, cols, False, NOW) == [
        "j2",
        "<none>",
        "<none>",
        "0",
        "<unknown>",
    ]


@pytest.mark.parametrize(
    ("with_namespace", "expected"),
    [
        pytest.param(False, ["NAME", "PHASE", "AGE"], id="name-columns-age"),
        pytest.param(True, ["NAMESPACE", "NAME", "PHASE", "AGE"], id="namespace-first-with-A"),
    ],
)
def test_headers(with_namespace: bool, expected: list[str]) -> None:
    assert headers([PrintColumn("PHASE", "status.phase")], with_namespace) == expected


def test_table_pads_columns_with_three_spaces_and_no_trailing_blanks() -> None:
    lines = table([["NAME", "TYPE", "AGE"], ["db", "Opaque", "5s"], ["a-long-name", "x", "3m"]])
    assert lines == [
        "NAME          TYPE     AGE",
        "db            Opaque   5s",
        "a-long-name   x        3m",
    ]


def test_render_and_names() -> None:
    obj = {"apiVersion": "cnai.io/v1alpha1", "kind": "Secret", "metadata": {"name": "db"}}
    listed = as_list([obj], "7")
    assert json.loads(render(listed, "json"))["items"][0]["metadata"]["name"] == "db"
    assert render(listed, "yaml").startswith("apiVersion: v1\nkind: List\n")
    assert name_of(obj) == "secret/db"
