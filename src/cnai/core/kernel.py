"""Registers the kernel kinds (Namespace, Secret, Event) with their admission rules."""

from __future__ import annotations

import base64

from cnai.core.errors import FieldError
from cnai.core.kinds import Event, Namespace, Secret
from cnai.core.registry import Column, KindInfo, Registry

DEFAULT_NAMESPACE = "default"
NAMESPACE_FINALIZER = "cnai.io/namespace-contents"


def _namespace_finalizer(ns: Namespace, old: Namespace | None) -> None:
    """Every namespace keeps a finalizer until its contents are deleted."""
    if old is None and NAMESPACE_FINALIZER not in ns.metadata.finalizers:
        ns.metadata.finalizers.append(NAMESPACE_FINALIZER)


def _merge_string_data(secret: Secret, old: Secret | None) -> None:
    """stringData is write-only: fold it into data as base64 and drop it."""
    for key, value in (secret.string_data or {}).items():
        secret.data[key] = base64.b64encode(value.encode()).decode()
    secret.string_data = None


def _secret_rules(secret: Secret, old: Secret | None) -> list[FieldError]:
    errors = []
    for key in secret.data:
        if not key or len(key) > 253 or not all(c.isalnum() or c in "-._" for c in key):
            errors.append(
                FieldError(f"data.{key}", "key must be 1-253 characters of [A-Za-z0-9-._]")
            )
    if old is not None and old.immutable and (old.data != secret.data or not secret.immutable):
        errors.append(FieldError("data", "field is immutable when `immutable` is set"))
    return errors


def _event_rules(event: Event, old: Event | None) -> list[FieldError]:
    if not event.involved_object.kind or not event.involved_object.name:
        return [FieldError("involvedObject", "kind and name are required", "FieldValueRequired")]
    return []


KERNEL_KINDS = (
    KindInfo(
        Namespace,
        columns=(Column("STATUS", "status.phase"),),
        defaulters=(_namespace_finalizer,),
    ),
    KindInfo(
        Secret,
        columns=(Column("TYPE", "type"), Column("DATA", "data", type="count")),
        defaulters=(_merge_string_data,),
        validators=(_secret_rules,),
        has_status=False,
    ),
    KindInfo(
        Event,
        columns=(
            Column("LAST SEEN", "lastTimestamp", type="date"),
            Column("TYPE", "type"),
            Column("REASON", "reason"),
            Column("OBJECT", "involvedObject.name"),
            Column("MESSAGE", "message"),
        ),
        validators=(_event_rules,),
        has_status=False,
    ),
)


def register_kernel(registry: Registry) -> None:
    for info in KERNEL_KINDS:
        registry.register(info)
