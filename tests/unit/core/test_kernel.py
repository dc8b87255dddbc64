"""The kernel kinds' admission rules: Secret stringData and immutability, Namespace finalizer."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from cnai.core.admission import AdmissionChain
from cnai.core.errors import Invalid
from cnai.core.kernel import NAMESPACE_FINALIZER, register_kernel
from cnai.core.kinds import Secret
from cnai.core.registry import Registry

from .builders import b64, make_event, make_namespace, make_secret


def admit(
    registry: Registry, plural: str, body: dict[str, Any], old: dict[str, Any] | None = None
) -> dict[str, Any]:
    info = registry.by_plural(plural)
    assert info is not None
    namespace = "default" if info.namespaced else None
    return AdmissionChain().admit(info, body, old, namespace=namespace)


def test_register_kernel_registers_the_kernel_kinds() -> None:
    registry = Registry()
    register_kernel(registry)
    assert sorted(i.kind for i in registry) == ["Event", "Namespace", "Node", "Pod", "Secret"]


def test_string_data_is_folded_into_data_and_dropped(registry: Registry) -> None:
    body = make_secret("db").data(user="admin").string_data(password="s3cret", user="root").build()
    admitted = admit(registry, "secrets", body)
    assert "stringData" not in admitted
    assert admitted["data"] == {"user": b64("root"), "password": b64("s3cret")}
    assert Secret.model_validate(admitted).decoded() == {"user": "root", "password": "s3cret"}


def test_string_data_handles_non_ascii_text(registry: Registry) -> None:
    admitted = admit(registry, "secrets", make_secret("db").string_data(k="clé ✓").build())
    assert base64.b64decode(admitted["data"]["k"]).decode() == "clé ✓"


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        pytest.param("tls.crt", True, id="dotted-key"),
        pytest.param("API_KEY-2", True, id="underscore-and-dash"),
        pytest.param("a/b", False, id="slash-in-key"),
        pytest.param("a b", False, id="space-in-key"),
        pytest.param("k" * 254, False, id="key-too-long"),
    ],
)
def test_secret_data_keys(registry: Registry, key: str, ok: bool) -> None:
    body = make_secret("db").raw_data({key: b64("v")}).build()
    if ok:
        assert key in admit(registry, "secrets", body)["data"]
    else:
        with pytest.raises(Invalid, match=r"key must be 1-253 characters"):
            admit(registry, "secrets", body)


def test_secret_string_data_keys_are_checked_too(registry: Registry) -> None:
    body = make_secret("db").string_data({"bad key": "v"}).build()
    with pytest.raises(Invalid, match=r"data\.bad key: key must be"):
        admit(registry, "secrets", body)


@pytest.mark.parametrize(
    ("new", "allowed"),
    [
        pytest.param(make_secret("db").data(k="v").immutable(), True, id="unchanged-is-allowed"),
        pytest.param(
            make_secret("db").data(k="v").immutable().labels(team="a"),
            True,
            id="metadata-change-is-allowed",
        ),
        pytest.param(
            make_secret("db").data(k="changed").immutable(), False, id="data-change-is-refused"
        ),
        pytest.param(
            make_secret("db").data(k="v", extra="x").immutable(),
            False,
            id="added-key-is-refused",
        ),
        pytest.param(
            make_secret("db").immutable().string_data(k="changed"),
            False,
            id="string-data-change-is-refused",
        ),
        pytest.param(
            make_secret("db").data(k="v").immutable(False), False, id="unsetting-immutable-refused"
        ),
    ],
)
def test_immutable_secret(registry: Registry, new: Any, allowed: bool) -> None:
    old = admit(registry, "secrets", make_secret("db").data(k="v").immutable().build())
    if allowed:
        admit(registry, "secrets", new.build(), old)
    else:
        with pytest.raises(Invalid, match="data: field is immutable"):
            admit(registry, "secrets", new.build(), old)


def test_mutable_secret_may_change_and_become_immutable(registry: Registry) -> None:
    old = admit(registry, "secrets", make_secret("db").data(k="v").build())
    new = admit(registry, "secrets", make_secret("db").data(k="w").immutable().build(), old)
    assert new["immutable"] is True


def test_new_namespace_gets_the_contents_finalizer(registry: Registry) -> None:
    admitted = admit(registry, "namespaces", make_namespace("team-a").finalizers("x").build())
    assert admitted["metadata"]["finalizers"] == ["x", NAMESPACE_FINALIZER]
    again = admit(registry, "namespaces", make_namespace("team-b").finalizers().build())
    assert again["metadata"]["finalizers"] == [NAMESPACE_FINALIZER]


def test_namespace_finalizer_is_not_added_twice(registry: Registry) -> None:
    body = make_namespace("team-a").finalizers(NAMESPACE_FINALIZER).build()
    assert admit(registry, "namespaces", body)["metadata"]["finalizers"] == [NAMESPACE_FINALIZER]


def test_namespace_finalizer_is_not_re_added_on_update(registry: Registry) -> None:
    old = admit(registry, "namespaces", make_namespace("team-a").build())
    released = admit(registry, "namespaces", make_namespace("team-a").finalizers().build(), old)
    assert "finalizers" not in released["metadata"]  # empty lists are omitted


def test_new_namespace_starts_active(registry: Registry) -> None:
    admitted = admit(registry, "namespaces", make_namespace("team-a").build())
    assert admitted["status"] == {"phase": "Active"}


@pytest.mark.parametrize(
    ("involved", "ok"),
    [
        pytest.param({"kind": "Pod", "name": "p"}, True, id="kind-and-name"),
        pytest.param({"kind": "", "name": "p"}, False, id="empty-kind"),
        pytest.param({"kind": "Pod", "name": ""}, False, id="empty-name"),
    ],
)
def test_event_needs_involved_object_kind_and_name(
    registry: Registry, involved: dict[str, str], ok: bool
) -> None:
    body = make_event("p.1").field("involvedObject", involved).build()
    if ok:
        assert admit(registry, "events", body)["involvedObject"]["name"] == "p"
    else:
        with pytest.raises(Invalid, match="involvedObject: kind and name are required"):
            admit(registry, "events", body)
