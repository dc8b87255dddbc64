"""The OpenAPI 3.1 document, generated from the kind registry's pydantic models."""

from __future__ import annotations

import re
from typing import Any

from pydantic.json_schema import models_json_schema

from cnai.core.registry import KindInfo, Registry
from cnai.version import API_GROUP, API_VERSION, __version__

PREFIX = f"/apis/{API_GROUP}/{API_VERSION}"


def _ref(kind: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{kind}"}


def _status_error() -> dict[str, Any]:
    return {
        "description": "Error (a Status object naming the field and the rule)",
        "content": {"application/json": {"schema": _ref("Status")}},
    }


def _op(
    summary: str, kind: str, body: bool = False, code: str = "200", list_of: bool = False
) -> dict[str, Any]:
    schema = (
        {"type": "object", "properties": {"items": {"type": "array", "items": _ref(kind)}}}
        if list_of
        else _ref(kind)
    )
    op: dict[str, Any] = {
        "summary": summary,
        "tags": [kind],
        "responses": {
            code: {"description": "OK", "content": {"application/json": {"schema": schema}}},
            "4XX": _status_error(),
        },
    }
    if body:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {"schema": _ref(kind)},
                "application/yaml": {"schema": _ref(kind)},
            },
        }
    if list_of:
        op["parameters"] = [
            {
                "name": n,
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": d,
            }
            for n, d in (
                ("labelSelector", "Kubernetes label selector, e.g. app=web,tier!=db"),
                ("fieldSelector", "Equality on dotted paths, e.g. metadata.name=x"),
                ("watch", "true to stream ADDED/MODIFIED/DELETED events as NDJSON"),
                ("resourceVersion", "Watch changes after this version (410 when too old)"),
                ("timeoutSeconds", "End a watch after this many seconds"),
            )
        ]
    return op


def _path_parameters(path: str) -> list[dict[str, Any]]:
    """OpenAPI requires every ``{template}`` in a path to be declared as a parameter."""
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", path)
    ]


def _paths_for(info: KindInfo) -> dict[str, Any]:
    k, p = info.kind, info.plural
    base = f"{PREFIX}/namespaces/{{namespace}}/{p}" if info.namespaced else f"{PREFIX}/{p}"
    paths: dict[str, Any] = {
        base: {
            "get": _op(f"List or watch {p}", k, list_of=True),
            "post": _op(f"Create a {k}", k, body=True, code="201"),
        },
        f"{base}/{{name}}": {
            "get": _op(f"Read a {k}", k),
            "put": _op(f"Replace a {k}'s spec and metadata (status is kept)", k, body=True),
            "patch": _op(f"JSON-merge-patch a {k}", k, body=True),
            "delete": _op(f"Delete a {k} (marked while finalizers remain)", k),
        },
    }
    if info.has_status:
        paths[f"{base}/{{name}}/status"] = {
            "get": _op(f"Read a {k}'s status", k),
            "put": _op(f"Replace a {k}'s status", k, body=True),
        }
    if info.namespaced:
        paths[f"{PREFIX}/{p}"] = {
            "get": _op(f"List or watch {p} in all namespaces", k, list_of=True)
        }
    return paths


def openapi_document(registry: Registry) -> dict[str, Any]:
    infos = list(registry)
    _, defs = models_json_schema(
        [(i.model, "validation") for i in infos], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    for info in infos:
        name = info.model.__name__
        if name != info.kind and name in schemas:
            schemas[info.kind] = schemas[name]
    schemas["Status"] = {
        "type": "object",
        "properties": {
            "code": {"type": "integer"},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "details": {
                "type": "object",
                "properties": {
                    "causes": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "field": {"type": "string"},
                                "message": {"type": "string"},
                                "reason": {"type": "string"},
                            },
                        },
                    }
                },
            },
        },
    }
    paths: dict[str, Any] = {}
    for info in infos:
        paths.update(_paths_for(info))
    for path, item in paths.items():
        item["parameters"] = _path_parameters(path)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "cnai API",
            "version": __version__,
            "description": "Kubernetes-style resource API of the cnai platform.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }
