"""The admission chain: parse, type-check, default, then validate every incoming object.

Every rejection names the field path and the rule (``metadata.name: must be a DNS-1123
label``). Kinds plug extra defaulters and validators in through their
:class:`~cnai.core.registry.KindInfo`. Error messages never echo the submitted values,
so a Secret's data cannot leak through an error.
"""

from __future__ import annotations

import secrets as pysecrets
from typing import Any

from pydantic import ValidationError

from cnai.core.errors import BadRequest, FieldError, Invalid
from cnai.core.meta import Resource, dns1123_label_error, dns1123_subdomain_error
from cnai.core.registry import KindInfo
from cnai.core.store.protocol import Obj
from cnai.version import GROUP_VERSION

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _loc_to_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "(root)"


def _message(err: Any) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required field is missing"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def validation_causes(exc: ValidationError) -> list[FieldError]:
    """Turn pydantic errors into field errors, without the offending input values."""
    return [
        FieldError(_loc_to_path(e["loc"]), _message(e), "FieldValueInvalid")
        for e in exc.errors(include_url=False, include_input=False)
    ]


def name_error(info: KindInfo, name: str) -> str | None:
    """Namespaces (and most kinds) need a DNS-1123 label; events may use dots."""
    if info.kind == "Event":
        return dns1123_subdomain_error(name)
    return dns1123_label_error(name)


def check_identity(
    info: KindInfo, body: Obj, namespace: str | None, name: str | None
) -> list[FieldError]:
    """Rules about apiVersion, kind, name and namespace, checked before typing."""
    errors: list[FieldError] = []
    api_version = body.get("apiVersion")
    if api_version != GROUP_VERSION:
        errors.append(
            FieldError("apiVersion", f"must be {GROUP_VERSION}", "FieldValueNotSupported")
        )
    if body.get("kind") != info.kind:
        errors.append(
            FieldError("kind", f"must be {info.kind} for {info.plural}", "FieldValueInvalid")
        )
    meta = body.get("metadata")
    if not isinstance(meta, dict):
        return [*errors, FieldError("metadata", "must be an object", "FieldValueRequired")]
    if info.namespaced:
        given = meta.get("namespace")
        if given in (None, ""):
            meta["namespace"] = namespace
        elif namespace is not None and given != namespace:
            errors.append(
                FieldError(
                    "metadata.namespace",
                    f"does not match the request path's namespace {namespace!r}",
                )
            )
    elif meta.get("namespace"):
        errors.append(
            FieldError("metadata.namespace", f"must be empty: {info.kind} is cluster-scoped")
        )
    if not meta.get("name") and meta.get("generateName") and name is None:
        prefix = str(meta["generateName"])
        meta["name"] = prefix + "".join(pysecrets.choice(_GENERATE_ALPHABET) for _ in range(5))
    obj_name = meta.get("name")
    if name is not None and obj_name not in (None, "", name):
        errors.append(
            FieldError("metadata.name", f"does not match the request path's name {name!r}")
        )
    elif name is not None and not obj_name:
        meta["name"] = name
    elif not isinstance(obj_name, str) or not obj_name:
        errors.append(FieldError("metadata.name", "is required", "FieldValueRequired"))
    elif err := name_error(info, obj_name):
        errors.append(FieldError("metadata.name", err))
    return errors


class AdmissionChain:
    """Defaulting then validation, for one object of a registered kind."""

    def admit(
        self,
        info: KindInfo,
        body: Obj,
        old: Obj | None = None,
        *,
        namespace: str | None = None,
        name: str | None = None,
    ) -> Obj:
        """Return the admitted object as JSON-ready data, or raise :class:`Invalid`."""
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON or YAML object")
        errors = check_identity(info, body, namespace, name)
        if errors:
            raise Invalid.of(errors, info.kind, _name_of(body))
        typed = self._typed(info, body)
        typed_old = self._typed(info, old) if old is not None else None
        for default in info.defaulters:
            default(typed, typed_old)
        for validate in info.validators:
            errors.extend(validate(typed, typed_old))
        if errors:
            raise Invalid.of(errors, info.kind, typed.metadata.name)
        return typed.to_dict()

    @staticmethod
    def _typed(info: KindInfo, body: Obj) -> Resource:
        try:
            return info.model.model_validate(body)
        except ValidationError as exc:
            raise Invalid.of(validation_causes(exc), info.kind, _name_of(body)) from None


def _name_of(body: Obj) -> str | None:
    meta = body.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else None
