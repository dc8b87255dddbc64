"""The admission chain: each rejection names the field path and the rule, never a value."""

from __future__ import annotations

from typing import Any

import pytest

from cnai.core.admission import AdmissionChain
from cnai.core.errors import BadRequest, Invalid
from cnai.core.meta import DNS1123_LABEL
from cnai.core.registry import Registry

from .builders import ObjectBuilder, make_event, make_namespace, make_secret

MARKER = "SECRET-MARKER-0xC0FFEE"


def admit(
    registry: Registry,
    plural: str,
    body: Any,
    old: dict[str, Any] | None = None,
    *,
    namespace: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    info = registry.by_plural(plural)
    assert info is not None
    return AdmissionChain().admit(info, body, old, namespace=namespace, name=name)


def causes(exc: pytest.ExceptionInfo[Invalid]) -> list[str]:
    return [str(c) for c in exc.value.causes]


@pytest.mark.parametrize(
    ("plural", "body", "namespace", "name", "expected"),
    [
        pytest.param(
            "secrets",
            make_secret("s").api_version("v1"),
            "default",
            None,
            "apiVersion: must be cnai.io/v1alpha1",
            id="wrong-api-version",
        ),
        pytest.param(
            "secrets",
            make_secret("s").api_version(None),
            "default",
            None,
            "apiVersion: must be cnai.io/v1alpha1",
            id="missing-api-version",
        ),
        pytest.param(
            "secrets",
            make_secret("s").kind("Namespace"),
            "default",
            None,
            "kind: must be Secret for secrets",
            id="kind-does-not-match-the-resource",
        ),
        pytest.param(
            "secrets",
            make_secret("s").without_metadata(),
            "default",
            None,
            "metadata: must be an object",
            id="missing-metadata",
        ),
        pytest.param(
            "secrets",
            make_secret("s").without_name(),
            "default",
            None,
            "metadata.name: is required",
            id="missing-name",
        ),
        pytest.param(
            "secrets",
            make_secret("s").meta("name", 42),
            "default",
            None,
            "metadata.name: is required",
            id="non-string-name",
        ),
        pytest.param(
            "secrets",
            make_secret("Bad_Name"),
            "default",
            None,
            "metadata.name: must be a DNS-1123 label",
            id="invalid-name",
        ),
        pytest.param(
            "secrets",
            make_secret("a.b"),
            "default",
            None,
            "metadata.name: must be a DNS-1123 label",
            id="dotted-name-for-a-kind-other-than-event",
        ),
        pytest.param(
            "events",
            make_event("Pod.X"),
            "default",
            None,
            "metadata.name: must be a DNS-1123 subdomain",
            id="event-name-must-be-a-subdomain",
        ),
        pytest.param(
            "secrets",
            make_secret("s", "team-a"),
            "team-b",
            None,
            "metadata.namespace: does not match the request path's namespace 'team-b'",
            id="namespace-mismatch-with-path",
        ),
        pytest.param(
            "namespaces",
            make_namespace("team-a").ns("default"),
            None,
            None,
            "metadata.namespace: must be empty: Namespace is cluster-scoped",
            id="namespace-on-a-cluster-scoped-kind",
        ),
        pytest.param(
            "secrets",
            make_secret("other"),
            "default",
            "s",
            "metadata.name: does not match the request path's name 's'",
            id="name-mismatch-with-path-on-update",
        ),
        pytest.param(
            "namespaces",
            make_namespace("team-a").spec(foo=1),
            None,
            None,
            "spec.foo: unknown field",
            id="unknown-nested-field",
        ),
        pytest.param(
            "secrets",
            make_secret("s").field("replicas", 3),
            "default",
            None,
            "replicas: unknown field",
            id="unknown-top-level-field",
        ),
        pytest.param(
            "secrets",
            make_secret("s").field("immutable", "perhaps"),
            "default",
            None,
            "immutable: Input should be a valid boolean",
            id="wrong-type",
        ),
        pytest.param(
            "secrets",
            make_secret("s").meta("labels", ["a"]),
            "default",
            None,
            "metadata.labels: Input should be a valid dictionary",
            id="wrong-type-in-metadata",
        ),
        pytest.param(
            "secrets",
            make_secret("s").meta("finalizers", ["ok", 7]),
            "default",
            None,
            "metadata.finalizers[1]: Input should be a valid string",
            id="list-index-in-path",
        ),
        pytest.param(
            "events",
            make_event("e").field("involvedObject", None),
            "default",
            None,
            "involvedObject: required field is missing",
            id="missing-required-field",
        ),
        pytest.param(
            "events",
            make_event("e").field("count", 0),
            "default",
            None,
            "count: Input should be greater than or equal to 1",
            id="out-of-range",
        ),
    ],
)
def test_rejection_names_the_field_and_the_rule(
    registry: Registry,
    plural: str,
    body: ObjectBuilder,
    namespace: str | None,
    name: str | None,
    expected: str,
) -> None:
    with pytest.raises(Invalid) as info:
        admit(registry, plural, body.build(), namespace=namespace, name=name)
    assert any(c.startswith(expected) for c in causes(info)), causes(info)
    assert expected in info.value.message
    assert info.value.code == 422


def test_all_identity_errors_are_reported_together(registry: Registry) -> None:
    body = make_secret("Bad_Name").api_version("v2").kind("Secrets").build()
    with pytest.raises(Invalid) as info:
        admit(registry, "secrets", body, namespace="default")
    fields = [c.field for c in info.value.causes]
    assert fields == ["apiVersion", "kind", "metadata.name"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([1, 2], id="list"),
        pytest.param("text", id="string"),
        pytest.param(None, id="null"),
    ],
)
def test_non_object_body_is_a_bad_request(registry: Registry, body: Any) -> None:
    with pytest.raises(BadRequest, match="must be a JSON or YAML object"):
        admit(registry, "secrets", body, namespace="default")


def test_namespace_is_defaulted_from_the_path(registry: Registry) -> None:
    admitted = admit(registry, "secrets", make_secret("s").ns(None).build(), namespace="team-a")
    assert admitted["metadata"]["namespace"] == "team-a"


def test_name_is_taken_from_the_path_on_update(registry: Registry) -> None:
    body = make_secret("s").without_name().build()
    admitted = admit(registry, "secrets", body, namespace="default", name="s")
    assert admitted["metadata"]["name"] == "s"


def test_generate_name_appends_a_random_valid_suffix(registry: Registry) -> None:
    names = {
        admit(
            registry,
            "secrets",
            make_secret("x").generate_name("job-").build(),
            namespace="default",
        )["metadata"]["name"]
        for _ in range(5)
    }
    assert len(names) == 5
    for name in names:
        assert name.startswith("job-")
        assert len(name) == len("job-") + 5
        assert DNS1123_LABEL.match(name)


def test_explicit_name_wins_over_generate_name(registry: Registry) -> None:
    body = make_secret("fixed").meta("generateName", "job-").build()
    assert admit(registry, "secrets", body, namespace="default")["metadata"]["name"] == "fixed"


def test_generated_name_is_still_validated(registry: Registry) -> None:
    body = make_secret("x").generate_name("Bad_").build()
    with pytest.raises(Invalid, match=r"metadata\.name: must be a DNS-1123 label"):
        admit(registry, "secrets", body, namespace="default")


def test_admitted_object_is_normalized_wire_data(registry: Registry) -> None:
    body = make_secret("s").data(k="v").build()
    admitted = admit(registry, "secrets", body, namespace="default")
    assert admitted["type"] == "Opaque"
    assert admitted["immutable"] is False
    assert "labels" not in admitted["metadata"]  # empty metadata maps are omitted


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            make_secret("s").raw_data({"password": f"not base64 {MARKER}"}), id="non-base64-data"
        ),
        pytest.param(make_secret("s").raw_data({"password": [MARKER]}), id="data-of-wrong-type"),
        pytest.param(
            make_secret("s").string_data(password={"nested": MARKER}),
            id="string-data-of-wrong-type",
        ),
        pytest.param(
            make_secret("s").string_data(password=MARKER).field("extra", MARKER),
            id="unknown-field-next-to-string-data",
        ),
        pytest.param(
            make_secret("Bad_Name").string_data(password=MARKER), id="bad-name-with-string-data"
        ),
        pytest.param(
            make_secret("s").data(password=MARKER).raw_data({"bad/key": "dmFsdWU="}),
            id="invalid-key-next-to-valid-data",
        ),
        pytest.param(
            make_secret("s").data(password=MARKER).meta("labels", {"k": MARKER + " !"}),
            id="invalid-label-value",
        ),
    ],
)
def test_errors_never_contain_submitted_secret_values(
    registry: Registry, body: ObjectBuilder
) -> None:
    with pytest.raises(Invalid) as info:
        admit(registry, "secrets", body.build(), namespace="default")
    status = info.value.to_status()
    assert info.value.causes
    for text in (str(info.value), repr(info.value.causes), repr(status)):
        assert MARKER not in text
        assert "SECRET-MARKER" not in text
