"""The kind registry: lookup by any of a kind's names, and refusing clashing registrations."""

from __future__ import annotations

import re
from typing import ClassVar

import pytest

from cnai.core.kinds import Namespace, Secret
from cnai.core.meta import Resource
from cnai.core.registry import Column, KindInfo, Registry


class Widget(Resource):
    KIND: ClassVar[str] = "Widget"
    PLURAL: ClassVar[str] = "widgets"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("wd",)


class NsThief(Resource):
    """A kind whose short name is already a Namespace alias."""

    KIND: ClassVar[str] = "NsThief"
    PLURAL: ClassVar[str] = "nsthieves"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ns",)


class SecretTwin(Resource):
    """A different model claiming the same plural as Secret."""

    KIND: ClassVar[str] = "SecretTwin"
    PLURAL: ClassVar[str] = "secrets"


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        pytest.param("namespaces", "Namespace", id="plural"),
        pytest.param("namespace", "Namespace", id="singular"),
        pytest.param("Namespace", "Namespace", id="kind"),
        pytest.param("ns", "Namespace", id="short-name"),
        pytest.param("NS", "Namespace", id="short-name-any-case"),
        pytest.param("SECRETS", "Secret", id="plural-any-case"),
        pytest.param("ev", "Event", id="event-short-name"),
        pytest.param("gadgets", None, id="unknown-kind"),
        pytest.param("", None, id="empty-name"),
    ],
)
def test_resolve_by_any_name(registry: Registry, name: str, kind: str | None) -> None:
    info = registry.resolve(name)
    assert (info.kind if info else None) == kind


def test_by_plural_is_exact_and_by_kind_resolves(registry: Registry) -> None:
    assert registry.by_plural("secrets") is registry.by_kind("Secret")
    assert registry.by_plural("secret") is None
    assert registry.by_plural("Secrets") is None


@pytest.mark.parametrize(
    ("model", "message"),
    [
        pytest.param(Secret, "kind Secret (secrets) is already registered", id="same-kind-twice"),
        pytest.param(SecretTwin, "already registered", id="same-plural-other-model"),
        pytest.param(NsThief, "name 'ns' of NsThief is already used by namespaces", id="alias"),
    ],
)
def test_clashing_registration_is_refused_and_changes_nothing(
    registry: Registry, model: type[Resource], message: str
) -> None:
    before = [(i.plural, i.kind) for i in registry]
    with pytest.raises(ValueError, match=re.escape(message)):
        registry.register(KindInfo(model))
    assert [(i.plural, i.kind) for i in registry] == before
    assert registry.resolve("nsthieves") is None
    assert registry.resolve("ns") is registry.by_plural("namespaces")


def test_new_kind_registers_all_its_names(registry: Registry) -> None:
    registry.register(KindInfo(Widget))
    for name in ("widgets", "widget", "Widget", "wd"):
        assert registry.resolve(name) is registry.by_plural("widgets")
    assert [i.kind for i in registry][-1] == "Widget"


def test_discovery_describes_the_kind() -> None:
    info = KindInfo(
        Namespace, columns=(Column("STATUS", "status.phase"), Column("AGE", "x", wide=True))
    )
    assert info.discovery() == {
        "name": "namespaces",
        "singularName": "namespace",
        "kind": "Namespace",
        "namespaced": False,
        "shortNames": ["ns"],
        "verbs": ["create", "get", "list", "watch", "update", "patch", "delete"],
        "subresources": ["status"],
        "columns": [
            {"name": "STATUS", "path": "status.phase", "wide": False, "type": "string"},
            {"name": "AGE", "path": "x", "wide": True, "type": "string"},
        ],
    }
    assert KindInfo(Secret, has_status=False).discovery()["subresources"] == []
