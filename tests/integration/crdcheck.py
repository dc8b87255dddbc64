"""Checks that a generated CRD is what the Kubernetes API server would accept and enforce.

``structural_errors`` applies the apiextensions rules for structural schemas (the API
server refuses a CRD that breaks them); ``object_errors`` validates an object against
a CRD's schema the way the API server does, except that a field the schema does not
know is an error here: the API server would silently prune it, and losing a field of a
manifest on the way into a cluster is exactly the bug these tests exist to catch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema

PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
JUNCTORS = ("allOf", "anyOf", "oneOf", "not")
# What a node inside a junctor may not say (value validations only).
NOT_IN_JUNCTORS = ("description", "type", "default", "additionalProperties", "nullable")


def structural_errors(schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Every way ``schema`` is not structural, each with the path of the node."""
    errors: list[str] = []
    exempt = schema.get(PRESERVE) is True or schema.get(INT_OR_STRING) is True
    if not schema.get("type") and not exempt:
        errors.append(f"{path or '<root>'}: no type")
    if "$ref" in schema:
        errors.append(f"{path}: $ref is not allowed")
    if "properties" in schema and "additionalProperties" in schema:
        errors.append(f"{path}: properties and additionalProperties together")
    if schema.get(PRESERVE) and schema.get("type") not in (None, "object"):
        errors.append(f"{path}: {PRESERVE} on a non-object")
    for junctor in JUNCTORS:
        branches = schema.get(junctor)
        if branches is None:
            continue
        for i, branch in enumerate(branches if isinstance(branches, list) else [branches]):
            for key in NOT_IN_JUNCTORS:
                if key in branch and not schema.get(INT_OR_STRING):
                    errors.append(f"{path}.{junctor}[{i}]: {key} inside a junctor")
    for name, prop in (schema.get("properties") or {}).items():
        errors += structural_errors(prop, f"{path}.{name}")
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        errors += structural_errors(extra, f"{path}.*")
    if isinstance(schema.get("items"), Mapping):
        errors += structural_errors(schema["items"], f"{path}[]")
    return errors


def to_json_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAPI v3 (Kubernetes dialect) schema as draft-4 JSON Schema, closed to
    unknown fields unless the schema preserves them."""
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, Mapping)):
            out[key] = to_json_schema(value)
        elif key.startswith("x-kubernetes-") or key in ("nullable", "format"):
            continue
        else:
            out[key] = value
    if schema.get(INT_OR_STRING):
        out["anyOf"] = [{"type": "string"}, {"type": "integer"}]
    if schema.get("type") == "object" and not schema.get(PRESERVE):
        out.setdefault("additionalProperties", False)
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def object_errors(crd: Mapping[str, Any], obj: Mapping[str, Any]) -> list[str]:
    """Why ``obj`` does not fit ``crd``'s served version (empty when it fits)."""
    version = next(v for v in crd["spec"]["versions"] if v["served"])
    if obj.get("kind") != crd["spec"]["names"]["kind"]:
        return [f"kind {obj.get('kind')!r} is not {crd['spec']['names']['kind']}"]
    schema = to_json_schema(version["schema"]["openAPIV3Schema"])
    schema["properties"]["metadata"] = {"type": "object"}  # the API server's own rules
    validator = jsonschema.Draft4Validator(schema)
    return [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(obj)
    ]
