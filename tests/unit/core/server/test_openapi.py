"""The OpenAPI document, served by the app and generated from the kind registry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from cnai.core.server.app import PREFIX

from .api_harness import Api

pytestmark = pytest.mark.anyio


@pytest.fixture
async def doc(api: Api) -> dict[str, Any]:
    resp = await api.client.get("/openapi.json", headers=api.headers())
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()
    return body


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


async def test_openapi_needs_a_token(api: Api) -> None:
    assert (await api.client.get("/openapi.json")).status_code == 401


async def test_document_header_and_security(doc: dict[str, Any]) -> None:
    assert doc["openapi"].startswith("3.1")
    assert doc["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("kind", ["Namespace", "Secret", "Event", "Status", "ObjectMeta"])
async def test_schemas_of_kernel_kinds_are_present(doc: dict[str, Any], kind: str) -> None:
    assert doc["components"]["schemas"][kind]["type"] == "object"


async def test_schemas_use_wire_names_and_carry_descriptions(doc: dict[str, Any]) -> None:
    secret = doc["components"]["schemas"]["Secret"]["properties"]
    assert {"apiVersion", "kind", "metadata", "data", "stringData", "immutable"} <= set(secret)
    assert "string_data" not in secret
    assert "write-only" in secret["stringData"]["description"].lower()
    event = doc["components"]["schemas"]["Event"]["properties"]
    assert {"involvedObject", "firstTimestamp", "lastTimestamp", "count"} <= set(event)
    meta = doc["components"]["schemas"]["ObjectMeta"]["properties"]
    assert all(p.get("description") for p in meta.values())


async def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    found = set(refs(doc))
    assert "#/components/schemas/Secret" in found
    for ref in found:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        pytest.param("/namespaces", {"get", "post"}, id="namespaces-collection"),
        pytest.param("/namespaces/{name}", {"get", "put", "patch", "delete"}, id="namespace-item"),
        pytest.param("/namespaces/{name}/status", {"get", "put"}, id="namespace-status"),
        pytest.param("/namespaces/{namespace}/secrets", {"get", "post"}, id="secrets-collection"),
        pytest.param(
            "/namespaces/{namespace}/secrets/{name}",
            {"get", "put", "patch", "delete"},
            id="secret-item",
        ),
        pytest.param("/secrets", {"get"}, id="secrets-in-all-namespaces"),
        pytest.param("/namespaces/{namespace}/events", {"get", "post"}, id="events-collection"),
        pytest.param("/events", {"get"}, id="events-in-all-namespaces"),
    ],
)
async def test_paths_of_kernel_kinds(doc: dict[str, Any], path: str, methods: set[str]) -> None:
    item = doc["paths"][PREFIX + path]
    assert methods <= set(item)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/namespaces/{namespace}/secrets/{name}/status", id="secret-has-no-status"),
        pytest.param("/namespaces/{namespace}/namespaces", id="namespace-is-cluster-scoped"),
    ],
)
async def test_paths_that_must_not_exist(doc: dict[str, Any], path: str) -> None:
    assert PREFIX + path not in doc["paths"]


async def test_every_path_template_is_declared_as_a_parameter(doc: dict[str, Any]) -> None:
    for path, item in doc["paths"].items():
        templated = set(re.findall(r"{(\w+)}", path))
        declared = {p["name"] for p in item.get("parameters", []) if p.get("in") == "path"}
        for op in item.values():
            if isinstance(op, dict):
                declared |= {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
        assert templated == declared, path


async def test_list_operations_document_selectors_and_watch(doc: dict[str, Any]) -> None:
    op = doc["paths"][PREFIX + "/namespaces/{namespace}/secrets"]["get"]
    params = {p["name"] for p in op["parameters"]}
    assert {"labelSelector", "fieldSelector", "watch", "resourceVersion"} <= params
    assert "4XX" in op["responses"]


async def test_document_passes_an_openapi_3_1_validator(doc: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    validate(doc)  # raises OpenAPIValidationError naming the offending part
