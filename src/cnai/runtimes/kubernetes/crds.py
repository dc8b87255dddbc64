"""CustomResourceDefinitions generated from cnai's kinds, so a cluster validates, prints
and stores the same objects the embedded platform does.

Each kind's pydantic model yields a JSON schema; Kubernetes needs a *structural*
OpenAPI v3 schema instead (every node typed, no ``$ref``, value checks only inside
``anyOf``, no ``additionalProperties`` beside ``properties``). :func:`structural`
converts one into the other:

- ``$ref`` is inlined; a model that contains itself becomes an object that keeps
  unknown fields (Kubernetes cannot express recursion);
- ``X | None`` becomes ``X`` with ``nullable: true``; ``str | int`` (quantities)
  becomes ``x-kubernetes-int-or-string``; a union of models becomes one object with
  every branch's fields (the API server's own validation still picks the branch);
- ``dict[str, Any]`` and ``Any`` keep unknown fields; a strict model's
  ``additionalProperties: false`` is dropped, as Kubernetes prunes unknown fields anyway;
- JSON Schema 2020's numeric ``exclusiveMinimum`` becomes OpenAPI 3.0's boolean form;
- ``title`` and ``default`` are dropped: cnai's API server applies its defaults, and a
  default the cluster applied on its own would make ``kubectl apply`` and ``cnai apply``
  store different objects.

Kinds whose schema is Kubernetes' own (:data:`CORE_KINDS`) are not CRDs: in a cluster
cnai's Namespaces, Secrets and Events are the core/v1 objects.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from cnai.core.registry import KindInfo, Registry
from cnai.version import API_GROUP, API_VERSION

# cnai plural -> the core/v1 kind that stores it in a cluster (same schema).
CORE_KINDS = {"namespaces": "Namespace", "secrets": "Secret", "events": "Event"}
# Short names a cluster already gives to core kinds: a CRD that claimed them would make
# `kubectl get po` ambiguous.
CORE_SHORT_NAMES = frozenset({"po", "no", "ns", "ev", "pc", "svc", "deploy", "cm", "pv", "pvc"})
CATEGORY = "cnai"
PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
# Formats the Kubernetes API server knows; others are dropped rather than ignored
# with a warning on every apply.
KNOWN_FORMATS = frozenset(
    {"date-time", "date", "int32", "int64", "float", "double", "byte", "uuid", "uri", "email"}
)
_DROPPED = frozenset({"title", "default", "$defs", "examples", "propertyNames", "$schema"})
_COLUMN_TYPES = frozenset({"string", "integer", "number", "boolean", "date"})


class SchemaError(ValueError):
    """A kind's schema has a construct this converter does not know how to express."""


def crd_name(info: KindInfo) -> str:
    return f"{info.plural}.{API_GROUP}"


def crd_kinds(registry: Registry) -> list[KindInfo]:
    """The kinds that become CRDs: all but those stored as core/v1 objects."""
    return [info for info in registry if info.plural not in CORE_KINDS]


def crd_for(info: KindInfo) -> dict[str, Any]:
    """The apiextensions.k8s.io/v1 CustomResourceDefinition of one kind."""
    schema = structural(info.model.model_json_schema(mode="validation"))
    # The API server owns metadata's schema: a CRD may only say it is an object.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    version: dict[str, Any] = {
        "name": API_VERSION,
        "served": True,
        "storage": True,
        "schema": {"openAPIV3Schema": schema},
        "additionalPrinterColumns": printer_columns(info),
    }
    if info.has_status and "status" in schema.get("properties", {}):
        version["subresources"] = {"status": {}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name(info), "labels": {"app.kubernetes.io/part-of": "cnai"}},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "names": {
                "plural": info.plural,
                "singular": info.singular,
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "shortNames": [s for s in info.short_names if s not in CORE_SHORT_NAMES],
                "categories": [CATEGORY],
            },
            "versions": [version],
        },
    }


def crds(registry: Registry) -> list[dict[str, Any]]:
    """Every kind's CRD, in registry order."""
    return [crd_for(info) for info in crd_kinds(registry)]


def token_crd() -> dict[str, Any]:
    """The CRD of the API-token records (``cnai.core.auth``): digests and scopes, never a
    token. Internal: the resource API never serves them, and no aggregated role grants
    them."""
    text = {"type": "string"}
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": text,
            "kind": text,
            "metadata": {"type": "object"},
            "digest": {**text, "description": "SHA-256 of the token's secret part."},
            "namespace": {**text, "nullable": True, "description": "Scope; null: admin."},
            "description": text,
            "created": text,
            "secret": {
                "type": "object",
                "description": "The token Secret it was issued into, if any.",
                "properties": {"namespace": text, "name": text, "uid": text},
            },
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"tokens.{API_GROUP}",
            "labels": {"app.kubernetes.io/part-of": "cnai"},
        },
        "spec": {
            "group": API_GROUP,
            "scope": "Cluster",
            "names": {
                "plural": "tokens",
                "singular": "token",
                "kind": "Token",
                "listKind": "TokenList",
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                    "additionalPrinterColumns": [
                        {"name": "Namespace", "type": "string", "jsonPath": ".namespace"},
                        {"name": "Description", "type": "string", "jsonPath": ".description"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                }
            ],
        },
    }


def printer_columns(info: KindInfo) -> list[dict[str, Any]]:
    """`cnai get`'s columns for kubectl: the kind's columns, wide ones at priority 1, then
    AGE (which kubectl leaves out once a CRD names its own columns)."""
    columns: list[dict[str, Any]] = []
    for column in info.columns:
        kind = column.type if column.type in _COLUMN_TYPES else "string"
        entry: dict[str, Any] = {"name": column.name, "type": kind, "jsonPath": f".{column.path}"}
        if column.wide:
            entry["priority"] = 1
        columns.append(entry)
    columns.append({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"})
    return columns


def structural(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema as a structural OpenAPI v3 schema (see the module docs)."""
    defs: Mapping[str, Any] = schema.get("$defs", {})
    return _convert(schema, defs, ())


def _convert(
    node: Mapping[str, Any], defs: Mapping[str, Any], seen: tuple[str, ...]
) -> dict[str, Any]:
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        if name in seen:  # recursion: Kubernetes has no way to say it
            return _with_description({"type": "object", PRESERVE: True}, node)
        if name not in defs:
            raise SchemaError(f"unresolved reference {node['$ref']}")
        merged = {**defs[name], **{k: v for k, v in node.items() if k != "$ref"}}
        return _convert(merged, defs, (*seen, name))
    for union in ("anyOf", "oneOf"):
        if union in node:
            return _union(node, union, defs, seen)
    if "allOf" in node and len(node["allOf"]) == 1:
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return _convert({**node["allOf"][0], **rest}, defs, seen)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key == "discriminator":
            continue
        if key == "properties":
            out[key] = {k: _convert(v, defs, seen) for k, v in value.items()}
        elif key == "items":
            out[key] = _convert(value, defs, seen) if isinstance(value, Mapping) else {}
        elif key == "prefixItems":  # tuples: any of the positions' schemas
            out["items"] = _union({"anyOf": value}, "anyOf", defs, seen)
        elif key == "additionalProperties":
            if isinstance(value, Mapping):
                out[key] = _convert(value, defs, seen) if value else {PRESERVE: True}
            elif value is True and "properties" not in node:
                out[PRESERVE] = True
        elif key == "const":
            out["enum"] = [value]
        elif key == "exclusiveMinimum" and not isinstance(value, bool):
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum" and not isinstance(value, bool):
            out["maximum"], out["exclusiveMaximum"] = value, True
        elif key == "format":
            if value in KNOWN_FORMATS:
                out[key] = value
        elif key == "required":
            out[key] = list(value)
        else:
            out[key] = copy.deepcopy(value)
    if "type" not in out and not out.get(PRESERVE) and not out.get(INT_OR_STRING):
        if "properties" in out or "additionalProperties" in out:
            out["type"] = "object"
        elif "items" in out:
            out["type"] = "array"
        elif "enum" in out and all(isinstance(v, str) for v in out["enum"]):
            out["type"] = "string"
        else:  # Any
            out[PRESERVE] = True
    if (
        out.get("type") == "object"
        and "properties" not in out
        and "additionalProperties" not in out
    ):
        out[PRESERVE] = True  # dict[str, Any]
    if out.get("type") == "array" and "items" not in out:
        out["items"] = {PRESERVE: True}
    if isinstance(out.get("type"), list):
        raise SchemaError(f"a list of types is not structural: {out['type']}")
    return out


def _union(
    node: Mapping[str, Any], key: str, defs: Mapping[str, Any], seen: tuple[str, ...]
) -> dict[str, Any]:
    branches = [b for b in node[key] if b.get("type") != "null"]
    nullable = len(branches) < len(node[key])
    rest = {k: v for k, v in node.items() if k not in (key, "discriminator")}
    converted = [_convert(b, defs, seen) for b in branches]
    types = {b.get("type") for b in converted}
    if len(converted) == 1:
        out = _convert({**branches[0], **rest}, defs, seen)
    elif types <= {"string", "integer"} and types:
        out = _with_description({INT_OR_STRING: True}, rest)
    elif types == {"object"}:
        out = _with_description(_merge_objects(converted), rest)
    elif types <= {"integer", "number"}:
        out = _with_description({"type": "number"}, rest)
    else:
        out = _with_description({PRESERVE: True}, rest)
    if nullable:
        out["nullable"] = True
    return out


def _merge_objects(branches: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One object schema accepting every branch's fields."""
    properties: dict[str, Any] = {}
    for branch in branches:
        if branch.get(PRESERVE) or "additionalProperties" in branch:
            return {"type": "object", PRESERVE: True}
        for name, prop in branch.get("properties", {}).items():
            properties.setdefault(name, prop)
    return {"type": "object", "properties": properties}


def _with_description(out: dict[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    if "description" in source:
        out["description"] = source["description"]
    return out
