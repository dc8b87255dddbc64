"""Delete with a propagation policy: Foreground and Orphan add their finalizer and mark the
object in one write; Background (or none) keeps the plain delete rules."""

from __future__ import annotations

from typing import Any

import pytest

from cnai.core.errors import BadRequest, NotFound
from cnai.core.store import strategy
from cnai.core.store.protocol import (
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    PropagationPolicy,
    WatchEventType,
)
from cnai.core.store.sqlite import SQLiteStore

from ..builders import T0, iso, make_widget

pytestmark = pytest.mark.anyio

W = "widgets"


@pytest.mark.parametrize("policy", [None, "Background"])
async def test_background_deletes_at_once(store: SQLiteStore, policy: str | None) -> None:
    await store.create(W, make_widget("w").build())
    gone = await store.delete(W, "default", "w", propagation=policy)
    assert gone["metadata"]["name"] == "w"
    with pytest.raises(NotFound):
        await store.get(W, "default", "w")


@pytest.mark.parametrize(
    ("policy", "finalizer"),
    [
        pytest.param("Foreground", FOREGROUND_FINALIZER, id="foreground"),
        pytest.param("Orphan", ORPHAN_FINALIZER, id="orphan"),
    ],
)
async def test_foreground_and_orphan_mark_with_their_finalizer_in_one_write(
    store: SQLiteStore, policy: str, finalizer: str
) -> None:
    await store.create(W, make_widget("w").build())
    watch = store.watch(W, resource_version=store.current_resource_version())
    marked = await store.delete(W, "default", "w", propagation=policy)
    assert marked["metadata"]["finalizers"] == [finalizer]
    assert marked["metadata"]["deletionTimestamp"] == iso(T0)
    assert await store.get(W, "default", "w") == marked
    ev = await anext(watch)
    assert (ev.type, ev.object) == (WatchEventType.MODIFIED, marked)
    await watch.aclose()  # type: ignore[attr-defined]

    # Removing the finalizer (the collector's job) deletes the object.
    marked["metadata"]["finalizers"] = []
    await store.update(W, marked)
    with pytest.raises(NotFound):
        await store.get(W, "default", "w")


async def test_a_repeated_foreground_delete_writes_nothing(store: SQLiteStore) -> None:
    await store.create(W, make_widget("w").finalizers("x/y").build())
    first = await store.delete(W, "default", "w", propagation="Foreground")
    assert first["metadata"]["finalizers"] == ["x/y", FOREGROUND_FINALIZER]
    version = store.current_resource_version()
    assert await store.delete(W, "default", "w", propagation="Foreground") == first
    assert await store.delete(W, "default", "w") == first
    assert store.current_resource_version() == version


async def test_a_second_policy_replaces_the_first_and_keeps_the_timestamp(
    store: SQLiteStore,
) -> None:
    await store.create(W, make_widget("w").build())
    await store.delete(W, "default", "w", propagation="Orphan")
    store.clock.advance(30)  # type: ignore[attr-defined]
    again = await store.delete(W, "default", "w", propagation="Foreground")
    assert again["metadata"]["finalizers"] == [FOREGROUND_FINALIZER]
    assert again["metadata"]["deletionTimestamp"] == iso(T0)


async def test_an_unknown_policy_is_refused_before_anything_changes(store: SQLiteStore) -> None:
    created = await store.create(W, make_widget("w").build())
    with pytest.raises(BadRequest, match="propagationPolicy: must be one of"):
        await store.delete(W, "default", "w", propagation="Sideways")
    assert await store.get(W, "default", "w") == created


async def test_a_stale_resource_version_refuses_a_foreground_delete(store: SQLiteStore) -> None:
    created = await store.create(W, make_widget("w").build())
    await store.update(W, make_widget("w").spec(size=2).build())
    with pytest.raises(Exception, match="stale"):
        await store.delete(
            W, "default", "w", created["metadata"]["resourceVersion"], propagation="Foreground"
        )
    assert "finalizers" not in (await store.get(W, "default", "w"))["metadata"]


def obj(finalizers: list[str] | None = None, marked: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "w"}
    if finalizers is not None:
        meta["finalizers"] = finalizers
    if marked:
        meta["deletionTimestamp"] = "2020-01-01T00:00:00Z"
    return {"metadata": meta}


@pytest.mark.parametrize(
    ("old", "policy", "finalizers"),
    [
        pytest.param(obj(), PropagationPolicy.BACKGROUND, None, id="background-no-finalizers-goes"),
        pytest.param(obj(["a"]), PropagationPolicy.BACKGROUND, ["a"], id="background-marks"),
        pytest.param(obj(), PropagationPolicy.FOREGROUND, ["foregroundDeletion"], id="fg-adds"),
        pytest.param(obj(["a"]), PropagationPolicy.ORPHAN, ["a", "orphan"], id="orphan-appends"),
        pytest.param(
            obj(["orphan"], marked=True),
            PropagationPolicy.FOREGROUND,
            ["foregroundDeletion"],
            id="foreground-replaces-orphan",
        ),
    ],
)
def test_prepare_delete(
    old: dict[str, Any], policy: PropagationPolicy, finalizers: list[str] | None
) -> None:
    new = strategy.prepare_delete(old, T0, policy)
    if finalizers is None:
        assert new is None
        return
    assert new is not None
    assert new["metadata"]["finalizers"] == finalizers
    assert new["metadata"]["deletionTimestamp"]


def test_prepare_delete_of_a_marked_object_with_the_same_finalizers_is_no_change() -> None:
    old = obj(["a", "orphan"], marked=True)
    assert strategy.prepare_delete(old, T0, PropagationPolicy.ORPHAN) is old
    assert strategy.prepare_delete(old, T0, PropagationPolicy.BACKGROUND) is old
