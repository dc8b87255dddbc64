"""Name and label rules, object defaults, and that Secret values never show in repr."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cnai.core.kinds import Namespace, Secret
from cnai.core.meta import (
    GenericResource,
    ObjectMeta,
    dns1123_label_error,
    dns1123_subdomain_error,
    label_key_error,
    label_value_error,
)
from cnai.version import GROUP_VERSION

from .builders import b64

MARKER = "hunter2-MARKER-7f3a"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("a", True, id="label-single-letter-is-valid"),
        pytest.param("team-a1", True, id="label-letters-digits-dashes-are-valid"),
        pytest.param("0abc", True, id="label-may-start-with-a-digit"),
        pytest.param("a" * 63, True, id="label-of-63-chars-is-valid"),
        pytest.param("a" * 64, False, id="label-of-64-chars-is-too-long"),
        pytest.param("", False, id="label-empty-is-invalid"),
        pytest.param("Team", False, id="label-uppercase-is-invalid"),
        pytest.param("-a", False, id="label-leading-dash-is-invalid"),
        pytest.param("a-", False, id="label-trailing-dash-is-invalid"),
        pytest.param("a.b", False, id="label-dot-is-invalid"),
        pytest.param("a_b", False, id="label-underscore-is-invalid"),
    ],
)
def test_dns1123_label(value: str, ok: bool) -> None:
    assert (dns1123_label_error(value) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("a.b.c", True, id="subdomain-dotted-is-valid"),
        pytest.param("pod-1.abc123", True, id="subdomain-event-style-name-is-valid"),
        pytest.param("a" * 253, True, id="subdomain-of-253-chars-is-valid"),
        pytest.param("a" * 254, False, id="subdomain-of-254-chars-is-too-long"),
        pytest.param("", False, id="subdomain-empty-is-invalid"),
        pytest.param("a..b", False, id="subdomain-empty-part-is-invalid"),
        pytest.param(".a", False, id="subdomain-leading-dot-is-invalid"),
        pytest.param("a.", False, id="subdomain-trailing-dot-is-invalid"),
        pytest.param("a.-b", False, id="subdomain-part-starting-with-dash-is-invalid"),
        pytest.param("A.b", False, id="subdomain-uppercase-is-invalid"),
    ],
)
def test_dns1123_subdomain(value: str, ok: bool) -> None:
    assert (dns1123_subdomain_error(value) is None) is ok


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        pytest.param("app", True, id="key-plain-name"),
        pytest.param("App_Name.v-1", True, id="key-name-allows-upper-underscore-dot-dash"),
        pytest.param("cnai.io/queue", True, id="key-with-subdomain-prefix"),
        pytest.param("a" * 63, True, id="key-name-of-63-chars"),
        pytest.param("a" * 64, False, id="key-name-of-64-chars-is-too-long"),
        pytest.param("", False, id="key-empty-is-invalid"),
        pytest.param("cnai.io/", False, id="key-prefix-without-name-is-invalid"),
        pytest.param("/queue", False, id="key-empty-prefix-is-invalid"),
        pytest.param("Cnai.io/queue", False, id="key-uppercase-prefix-is-invalid"),
        pytest.param("a/b/c", False, id="key-two-slashes-is-invalid"),
        pytest.param("-app", False, id="key-name-starting-with-dash-is-invalid"),
        pytest.param("app_", False, id="key-name-ending-with-underscore-is-invalid"),
        pytest.param("my app", False, id="key-with-space-is-invalid"),
    ],
)
def test_label_key(key: str, ok: bool) -> None:
    assert (label_key_error(key) is None) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("", True, id="value-empty-is-valid"),
        pytest.param("v1.2_rc-3", True, id="value-with-dot-underscore-dash"),
        pytest.param("a" * 63, True, id="value-of-63-chars"),
        pytest.param("a" * 64, False, id="value-of-64-chars-is-too-long"),
        pytest.param("-v", False, id="value-starting-with-dash-is-invalid"),
        pytest.param("v.", False, id="value-ending-with-dot-is-invalid"),
        pytest.param("a/b", False, id="value-with-slash-is-invalid"),
        pytest.param("a b", False, id="value-with-space-is-invalid"),
    ],
)
def test_label_value(value: str, ok: bool) -> None:
    assert (label_value_error(value) is None) is ok


@pytest.mark.parametrize(
    ("field", "mapping", "needle"),
    [
        pytest.param("labels", {"bad key": "v"}, "key 'bad key'", id="labels-reject-bad-key"),
        pytest.param("labels", {"app": "-v"}, "value of 'app'", id="labels-reject-bad-value"),
        pytest.param("annotations", {"/x": "v"}, "key '/x'", id="annotations-reject-bad-key"),
    ],
)
def test_object_meta_validates_labels_and_annotation_keys(
    field: str, mapping: dict[str, str], needle: str
) -> None:
    with pytest.raises(ValidationError) as info:
        ObjectMeta.model_validate({"name": "x", field: mapping})
    assert needle in str(info.value)


def test_annotation_values_are_free_form() -> None:
    meta = ObjectMeta.model_validate({"name": "x", "annotations": {"note": "any text / at all"}})
    assert meta.annotations == {"note": "any text / at all"}


def test_new_fills_kind_and_drops_namespace_for_cluster_scoped_kinds() -> None:
    ns = Namespace.new("team-a", namespace="ignored")
    secret = Secret.new("db", "team-a")
    assert ns.to_dict()["kind"] == "Namespace"
    assert "namespace" not in ns.to_dict()["metadata"]
    assert secret.to_dict()["metadata"]["namespace"] == "team-a"
    assert secret.to_dict()["apiVersion"] == GROUP_VERSION


def test_to_dict_uses_wire_names_and_leaves_out_none() -> None:
    data = Secret.new("db", "default", string_data={"k": "v"}).to_dict()
    assert "stringData" in data
    assert "string_data" not in data
    assert "uid" not in data["metadata"]


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(
            Secret.new("db", "default", data={"password": b64(MARKER)}), id="typed-secret-data"
        ),
        pytest.param(
            Secret.new("db", "default", string_data={"password": MARKER}),
            id="typed-secret-string-data",
        ),
        pytest.param(
            GenericResource.model_validate(
                {"kind": "Secret", "metadata": {"name": "db"}, "data": {"password": MARKER}}
            ),
            id="generic-secret-data",
        ),
        pytest.param(
            GenericResource.model_validate(
                {"kind": "Secret", "metadata": {"name": "db"}, "stringData": {"password": MARKER}}
            ),
            id="generic-secret-string-data",
        ),
    ],
)
def test_secret_repr_never_shows_values(secret: Secret | GenericResource) -> None:
    for text in (repr(secret), str(secret)):
        assert MARKER not in text
        assert b64(MARKER) not in text
        assert "password" in text  # keys stay visible
        assert "<redacted>" in text


def test_generic_resource_of_other_kinds_shows_its_data() -> None:
    obj = GenericResource.model_validate(
        {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "visible-value"}}
    )
    assert "visible-value" in repr(obj)
