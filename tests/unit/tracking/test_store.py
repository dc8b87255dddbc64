"""The tracking store against a real SQLite file: runs, params, tags, metric histories."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from cnai.core.errors import AlreadyExists, BadRequest, NotFound
from cnai.tracking.store import DEFAULT_GROUP, Owner, Points, TrackingStore

pytestmark = pytest.mark.anyio


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[TrackingStore]:
    s = TrackingStore(tmp_path / "tracking.db")
    yield s
    await s.close()


def points(key: str, steps: list[int], values: list[float], t0: int = 1_000) -> Points:
    return Points.of(key, steps, values, [t0 + s for s in steps])


async def test_a_run_without_a_group_lands_in_the_namespaces_default_group(
    store: TrackingStore,
) -> None:
    run = await store.create_run("team-a", name="first", params={"lr": 0.1}, tags={"k": "v"})
    group = await store.group("team-a", id=run.group_id)
    assert group.name == DEFAULT_GROUP
    got = await store.get_run("team-a", run.id)
    assert (got.name, got.status, got.params, got.tags) == (
        "first",
        "RUNNING",
        {"lr": "0.1"},
        {"k": "v"},
    )
    assert got.artifact_uri.endswith(f"/artifacts/team-a/{run.id}")


async def test_listeners_hear_of_committed_metric_points_only(
    store: TrackingStore, caplog: pytest.LogCaptureFixture
) -> None:
    heard: list[tuple[str, str, frozenset[str]]] = []

    def failing(namespace: str, run_id: str, keys: frozenset[str]) -> None:
        raise RuntimeError("a broken listener")

    store.add_listener(failing)
    store.add_listener(lambda ns, run_id, keys: heard.append((ns, run_id, keys)))
    run = await store.create_run("team-a")
    await store.log("team-a", run.id, params={"lr": "0.1"})  # no points: not told
    written = await store.log(
        "team-a",
        run.id,
        metrics={"loss": points("loss", [1], [0.5]), "acc": points("acc", [1], [0.9])},
    )
    assert written == 2  # the broken listener did not fail the call
    assert heard == [("team-a", run.id, frozenset({"loss", "acc"}))]
    assert "a log listener failed" in caplog.text
    with pytest.raises(NotFound):  # refused: nothing committed, nobody told
        await store.log("team-a", "no-such-run", metrics={"loss": points("loss", [1], [0.5])})
    assert len(heard) == 1


async def test_runs_are_namespaced(store: TrackingStore) -> None:
    run = await store.create_run("team-a")
    with pytest.raises(NotFound, match="not found in namespace team-b"):
        await store.get_run("team-b", run.id)
    with pytest.raises(NotFound):
        await store.log("team-b", run.id, params={"x": "1"})
    assert await store.list_runs("team-b") == []


async def test_metric_history_comes_back_in_order_across_many_writes(
    store: TrackingStore,
) -> None:
    run = await store.create_run("ns")
    # Concurrent writes are committed together; the history keeps the order of arrival.
    await asyncio.gather(
        *(
            store.log("ns", run.id, metrics={"loss": points("loss", [i], [1.0 / (i + 1)])})
            for i in range(50)
        )
    )
    await store.log("ns", run.id, metrics={"loss": points("loss", [50, 51], [0.5, 0.25])})
    history = await store.history("ns", run.id, "loss")
    assert sorted(history.steps.tolist()) == list(range(52))
    assert history.steps.tolist()[-2:] == [50, 51]
    by_step = dict(zip(history.steps.tolist(), history.values.tolist(), strict=True))
    assert by_step[0] == 1.0
    assert by_step[9] == pytest.approx(0.1)
    assert (await store.get_run("ns", run.id)).latest["loss"].value == 0.25
    assert len(await store.history("ns", run.id, "never-logged")) == 0


@pytest.mark.parametrize(
    ("steps", "values", "timestamps", "message"),
    [
        pytest.param(
            [0, 1], [1.0, float("nan")], [1, 2], r"values\[1\]: nan is not a finite", id="nan"
        ),
        pytest.param([0], [float("inf")], [1], "not a finite number", id="infinity"),
        pytest.param([0, 1], [1.0], [1, 2], "equal length", id="ragged-columns"),
        pytest.param(["x"], [1.0], [1], "must be integers", id="step-not-an-integer"),
        pytest.param([0], [1.0], [-5], "milliseconds since 1970", id="negative-timestamp"),
    ],
)
def test_bad_points_are_refused_with_the_metric_and_the_rule(
    steps: list[object], values: list[float], timestamps: list[int], message: str
) -> None:
    with pytest.raises(BadRequest, match=message) as err:
        Points.of("loss", steps, values, timestamps)  # type: ignore[arg-type]
    assert "metrics[loss]" in err.value.message


async def test_a_param_is_written_once(store: TrackingStore) -> None:
    run = await store.create_run("ns", params={"lr": "0.1"})
    await store.log("ns", run.id, params={"lr": "0.1"})  # the same value again is fine
    with pytest.raises(BadRequest, match=r"params\[lr\]: already logged as '0.1'"):
        await store.log(
            "ns", run.id, params={"lr": "0.2"}, metrics={"loss": points("loss", [0], [1.0])}
        )
    # The failed request wrote nothing, not even its points.
    assert len(await store.history("ns", run.id, "loss")) == 0
    assert (await store.get_run("ns", run.id)).params == {"lr": "0.1"}


async def test_one_bad_request_fails_alone_in_a_shared_commit(store: TrackingStore) -> None:
    run = await store.create_run("ns", params={"lr": "0.1"})
    good = store.log("ns", run.id, metrics={"acc": points("acc", [0], [0.9])})
    bad = store.log("ns", run.id, params={"lr": "9"})
    unknown = store.log("ns", "no-such-run", metrics={"acc": points("acc", [0], [0.1])})
    results = await asyncio.gather(good, bad, unknown, return_exceptions=True)
    assert results[0] == 1
    assert isinstance(results[1], BadRequest)
    assert isinstance(results[2], NotFound)
    assert (await store.history("ns", run.id, "acc")).values.tolist() == [0.9]


async def test_groups_by_name_and_owner_filter(store: TrackingStore) -> None:
    group = await store.create_group("ns", "sweep", tags={"team": "a"})
    with pytest.raises(AlreadyExists):
        await store.create_group("ns", "sweep")
    owned = await store.create_run("ns", group_id=group.id, owner=Owner("TrainJob", "t", "uid-1"))
    await store.create_run("ns")
    assert [r.id for r in await store.list_runs("ns", owner_uid="uid-1")] == [owned.id]
    assert [r.id for r in await store.list_runs("ns", group_ids=[group.id])] == [owned.id]
    assert (await store.group("ns", name="sweep")).tags == {"team": "a"}


async def test_finishing_a_run_and_what_survives_a_reopen(tmp_path: Path) -> None:
    store = TrackingStore(tmp_path / "t.db")
    run = await store.create_run("ns")
    await store.log(
        "ns",
        run.id,
        metrics={"loss": points("loss", list(range(1000)), list(np.linspace(1, 0, 1000)))},
    )
    await store.update_run("ns", run.id, status="FINISHED", end_ms=5)
    with pytest.raises(BadRequest, match="status: must be one of"):
        await store.update_run("ns", run.id, status="DONE")
    await store.close()
    again = TrackingStore(tmp_path / "t.db")
    try:
        got = await again.get_run("ns", run.id)
        assert (got.status, got.end_ms) == ("FINISHED", 5)
        history = await again.history("ns", run.id, "loss")
        assert history.steps.tolist() == list(range(1000))
        assert history.values[-1] == 0.0
    finally:
        await again.close()
