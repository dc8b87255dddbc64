"""Searching runs (the dashboard's runs list) and thinning histories: parsing the query,
and the pages, filters, orders and totals the store answers on a real SQLite file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from cnai.core.errors import BadRequest
from cnai.tracking.routes import max_points
from cnai.tracking.search import MAX_IDS, RunFilter, RunOrder, RunQuery
from cnai.tracking.store import Points, Run, TrackingStore

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TrackingStore]:
    s = TrackingStore(tmp_path / "tracking.db")
    yield s
    await s.close()


# -- parsing ---------------------------------------------------------------------------


def test_an_empty_query_is_the_first_thousand_newest_first() -> None:
    assert RunQuery.parse({}) == RunQuery(
        order=RunOrder("startTime", "", True), limit=1000, offset=0
    )


def test_a_full_query_is_parsed() -> None:
    query = RunQuery.parse(
        {"q": " Sweep ", "ids": "a, b", "sort": "metrics.val/loss", "limit": "50", "offset": "100"}
    )
    assert query == RunQuery(
        text="Sweep",
        ids=("a", "b"),
        order=RunOrder("metric", "val/loss", False),
        limit=50,
        offset=100,
    )
    assert query.filter((3,)) == RunFilter((3,), "", "Sweep", ("a", "b"))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param({"limit": "0"}, "limit:", id="limit-zero"),
        pytest.param({"limit": "10001"}, "limit:", id="limit-over-10000"),
        pytest.param({"limit": "ten"}, "limit:", id="limit-not-a-number"),
        pytest.param({"offset": "-1"}, "offset:", id="offset-negative"),
        pytest.param({"sort": "loss"}, "sort:", id="sort-unknown-column"),
        pytest.param({"sort": "metrics."}, "sort:", id="sort-metric-without-key"),
        pytest.param({"ids": "a,,b"}, "ids:", id="ids-with-an-empty-one"),
        pytest.param({"ids": ",".join(["x"] * (MAX_IDS + 1))}, "ids:", id="ids-too-many"),
        pytest.param({"q": "x" * 501}, "q:", id="text-too-long"),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(
    params: dict[str, str], field: str
) -> None:
    with pytest.raises(BadRequest) as refused:
        RunQuery.parse(params)
    assert str(refused.value).startswith(field)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty-query-string"),
        pytest.param("500", 500, id="text"),
        pytest.param(2, 2, id="number"),
    ],
)
def test_max_points(raw: object, expected: int | None) -> None:
    assert max_points(raw) == expected


@pytest.mark.parametrize("raw", ["1", "100001", "x", 1.5, True, [3]])
def test_bad_max_points_is_refused_naming_it(raw: object) -> None:
    with pytest.raises(BadRequest, match=r"^maxPoints: must be a whole number from 2"):
        max_points(raw)


# -- thinning --------------------------------------------------------------------------


def test_thinning_keeps_at_most_n_evenly_spaced_points_with_the_first_and_last() -> None:
    steps = list(range(1000))
    points = Points.of("loss", steps, [float(s) for s in steps], steps)
    thin = points.thinned(100)
    assert len(thin) == 100
    assert (thin.steps[0], thin.steps[-1]) == (0, 999)
    assert np.all(np.diff(thin.steps) > 0)
    assert thin.values.tolist() == thin.steps.astype(float).tolist()  # rows stay together
    assert points.thinned(1000) is points


# -- the store -------------------------------------------------------------------------


async def _run(store: TrackingStore, name: str, start: int, loss: float | None) -> Run:
    run = await store.create_run("ns", name=name, start_ms=start)
    if loss is not None:
        await store.log("ns", run.id, metrics={"loss": Points.of("loss", [0], [loss], [start])})
    return run


async def test_pages_come_with_the_total_newest_first(store: TrackingStore) -> None:
    runs = [await _run(store, f"r{i}", 1000 + i, None) for i in range(5)]
    page, total = await store.search_runs("ns", limit=2, offset=1)
    assert total == 5
    assert [r.id for r in page] == [runs[3].id, runs[2].id]
    last, _ = await store.search_runs("ns", limit=2, offset=4)
    assert [r.id for r in last] == [runs[0].id]


async def test_text_matches_names_case_insensitively_and_id_prefixes(
    store: TrackingStore,
) -> None:
    a = await _run(store, "Sweep-lr_0.1", 1, None)
    b = await _run(store, "baseline", 2, None)
    assert [r.id for r in (await store.search_runs("ns", RunFilter(text="sweep")))[0]] == [a.id]
    # % and _ are text, not LIKE's wildcards
    assert (await store.search_runs("ns", RunFilter(text="w%p")))[1] == 0
    assert (await store.search_runs("ns", RunFilter(text="s_eep")))[1] == 0
    assert (await store.search_runs("ns", RunFilter(text="p-lr_0")))[1] == 1
    by_id, total = await store.search_runs("ns", RunFilter(text=b.id[:6]))
    assert ([r.id for r in by_id], total) == ([b.id], 1)


async def test_ids_select_those_runs_and_no_others(store: TrackingStore) -> None:
    runs = [await _run(store, f"r{i}", i, None) for i in range(4)]
    wanted = (runs[0].id, runs[2].id, "not-a-run")
    found, total = await store.search_runs("ns", RunFilter(ids=wanted))
    assert ({r.id for r in found}, total) == ({runs[0].id, runs[2].id}, 2)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        pytest.param("metrics.loss", ["low", "mid", "high", "none"], id="metric-ascending"),
        pytest.param("-metrics.loss", ["high", "mid", "low", "none"], id="metric-descending"),
        pytest.param("name", ["high", "low", "mid", "none"], id="name"),
        pytest.param("-startTime", ["none", "high", "mid", "low"], id="newest-first"),
    ],
)
async def test_orders_put_runs_without_the_value_last(
    store: TrackingStore, sort: str, expected: list[str]
) -> None:
    await _run(store, "mid", 2, 0.5)
    await _run(store, "low", 1, 0.1)
    await _run(store, "high", 3, 0.9)
    await _run(store, "none", 4, None)
    found, _ = await store.search_runs("ns", order=RunOrder.parse(sort))
    assert [r.name for r in found] == expected


async def test_other_namespaces_are_neither_listed_nor_counted(store: TrackingStore) -> None:
    await _run(store, "mine", 1, None)
    await store.create_run("other", name="theirs")
    found, total = await store.search_runs("ns")
    assert ([r.name for r in found], total) == (["mine"], 1)
