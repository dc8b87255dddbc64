"""The pure write rules: what create, update, status update and delete do to an object."""

from __future__ import annotations

from typing import Any

import pytest

from cnai.core.errors import Invalid
from cnai.core.store import strategy

from ..builders import T0, FakeClock, iso, make_secret, make_widget


def stored(builder: Any) -> dict[str, Any]:
    """An object as the store holds it after create (generation 1)."""
    obj: dict[str, Any] = strategy.prepare_create(builder.build(), uid="uid-1", now=T0)
    obj["metadata"]["resourceVersion"] = "7"
    return obj


def test_create_fills_identity_and_generation() -> None:
    sent = make_widget("w").spec(size=1).rv("99").meta("deletionTimestamp", "x").build()
    created = strategy.prepare_create(sent, uid="uid-1", now=T0)
    meta = created["metadata"]
    assert meta["uid"] == "uid-1"
    assert meta["creationTimestamp"] == iso(T0)
    assert meta["generation"] == 1
    assert "resourceVersion" not in meta
    assert "deletionTimestamp" not in meta
    assert "uid" not in sent["metadata"]  # the caller's dict is not mutated


def test_create_overrides_client_supplied_identity() -> None:
    sent = make_widget("w").uid("forged").meta("generation", 9).build()
    meta = strategy.prepare_create(sent, uid="uid-1", now=T0)["metadata"]
    assert (meta["uid"], meta["generation"]) == ("uid-1", 1)


@pytest.mark.parametrize(
    ("old", "new", "generation"),
    [
        pytest.param(
            make_widget("w").spec(size=1),
            make_widget("w").spec(size=2),
            2,
            id="spec-change-bumps-generation",
        ),
        pytest.param(
            make_widget("w").spec(size=1),
            make_widget("w").spec(size=1).labels(app="web"),
            1,
            id="labels-only-change-keeps-generation",
        ),
        pytest.param(
            make_widget("w").spec(size=1),
            make_widget("w").spec(size=1).annotations(note="x").finalizers("f"),
            1,
            id="annotations-and-finalizers-keep-generation",
        ),
        pytest.param(
            make_widget("w").spec(size=1),
            make_widget("w").spec(size=1).status(phase="Done"),
            1,
            id="status-sent-on-update-keeps-generation",
        ),
        pytest.param(
            make_secret("s").data(k="one"),
            make_secret("s").data(k="two"),
            2,
            id="secret-data-counts-as-spec",
        ),
        pytest.param(
            make_widget("w").spec(size=1),
            make_widget("w"),
            2,
            id="removing-spec-bumps-generation",
        ),
    ],
)
def test_update_bumps_generation_only_when_desired_state_changes(
    old: Any, new: Any, generation: int
) -> None:
    updated = strategy.prepare_update(stored(old), new.build())
    assert updated["metadata"]["generation"] == generation


def test_update_counts_generation_up_from_the_stored_one() -> None:
    old = stored(make_widget("w").spec(size=1))
    old["metadata"]["generation"] = 5
    assert (
        strategy.prepare_update(old, make_widget("w").spec(size=2).build())["metadata"][
            "generation"
        ]
        == 6
    )


def test_update_keeps_status_and_server_owned_identity() -> None:
    old = stored(make_widget("w").spec(size=1).status(phase="Running"))
    new = (
        make_widget("w")
        .ns("elsewhere")
        .uid("forged")
        .meta("creationTimestamp", "1999-01-01T00:00:00Z")
        .meta("generation", 42)
        .spec(size=1)
        .status(phase="Hacked")
        .labels(app="web")
        .build()
    )
    updated = strategy.prepare_update(old, new)
    for key in ("uid", "creationTimestamp", "generation", "namespace", "name"):
        assert updated["metadata"][key] == old["metadata"][key], key
    assert updated["status"] == {"phase": "Running"}
    assert updated["metadata"]["labels"] == {"app": "web"}


def test_update_of_object_without_status_drops_a_sent_status() -> None:
    old = stored(make_widget("w").spec(size=1))
    updated = strategy.prepare_update(old, make_widget("w").status(phase="x").build())
    assert "status" not in updated


def test_update_cannot_clear_deletion_timestamp() -> None:
    old = strategy.mark_deleted(stored(make_widget("w").finalizers("a")), T0)
    updated = strategy.prepare_update(old, make_widget("w").finalizers("a").build())
    assert updated["metadata"]["deletionTimestamp"] == iso(T0)


@pytest.mark.parametrize(
    ("finalizers", "allowed"),
    [
        pytest.param(("a",), True, id="keeping-finalizers-while-deleting-is-allowed"),
        pytest.param((), True, id="removing-finalizers-while-deleting-is-allowed"),
        pytest.param(("a", "b"), False, id="adding-a-finalizer-while-deleting-is-refused"),
        pytest.param(("b",), False, id="swapping-a-finalizer-while-deleting-is-refused"),
    ],
)
def test_finalizers_while_deleting(finalizers: tuple[str, ...], allowed: bool) -> None:
    old = strategy.mark_deleted(stored(make_widget("w").finalizers("a")), T0)
    new = make_widget("w").finalizers(*finalizers).build()
    if allowed:
        assert strategy.prepare_update(old, new)["metadata"]["finalizers"] == list(finalizers)
    else:
        with pytest.raises(Invalid, match=r"metadata\.finalizers: cannot add finalizers"):
            strategy.prepare_update(old, new)


def test_adding_finalizers_before_deletion_is_allowed() -> None:
    old = stored(make_widget("w"))
    new = make_widget("w").finalizers("a", "b").build()
    assert strategy.prepare_update(old, new)["metadata"]["finalizers"] == ["a", "b"]


def test_status_update_changes_only_status() -> None:
    old = stored(make_widget("w").spec(size=1).labels(app="web").status(phase="Pending"))
    new = make_widget("w").spec(size=9).labels(app="evil").status(phase="Running").build()
    updated = strategy.prepare_status_update(old, new)
    assert updated["status"] == {"phase": "Running"}
    assert updated["spec"] == {"size": 1}
    assert updated["metadata"] == old["metadata"]


def test_status_update_without_status_clears_it() -> None:
    old = stored(make_widget("w").status(phase="Pending"))
    assert "status" not in strategy.prepare_status_update(old, make_widget("w").build())


def test_mark_deleted_is_idempotent() -> None:
    clock = FakeClock()
    first = strategy.mark_deleted(stored(make_widget("w").finalizers("a")), clock())
    clock.advance(60)
    again = strategy.mark_deleted(first, clock())
    assert again["metadata"]["deletionTimestamp"] == iso(T0)


@pytest.mark.parametrize(
    ("deleting", "finalizers", "released"),
    [
        pytest.param(False, (), False, id="live-object-is-not-released"),
        pytest.param(True, ("a",), False, id="deleting-with-finalizers-waits"),
        pytest.param(True, (), True, id="deleting-without-finalizers-is-released"),
    ],
)
def test_is_released(deleting: bool, finalizers: tuple[str, ...], released: bool) -> None:
    obj = stored(make_widget("w").finalizers(*finalizers))
    if deleting:
        obj["metadata"]["deletionTimestamp"] = iso(T0)
    assert strategy.is_released(obj) is released
