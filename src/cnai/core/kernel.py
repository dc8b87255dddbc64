"""Registers the kernel kinds (Namespace, Secret, Event) with their admission rules."""

from __future__ import annotations

import base64
import re

from cnai.core.errors import FieldError
from cnai.core.kinds import Event, Namespace, Secret
from cnai.core.pods import Node, Pod
from cnai.core.quantity import parse_quantity
from cnai.core.registry import Column, KindInfo, Registry

DEFAULT_NAMESPACE = "default"
NAMESPACE_FINALIZER = "cnai.io/namespace-contents"
# Held by every Pod until the runtime has stopped its process and removed its files,
# so that deleting a Pod (or its namespace, or its Job) never leaves a process behind.
POD_FINALIZER = "cnai.io/pod-runtime"
# A Secret of this type holds an API token the platform issues and revokes with it
# (cnai.core.token_secrets).
TOKEN_SECRET_TYPE = "cnai.io/token"  # noqa: S105 - a Secret type, not a password


def _namespace_finalizer(ns: Namespace, old: Namespace | None) -> None:
    """Every namespace keeps a finalizer until its contents are deleted."""
    if old is None and NAMESPACE_FINALIZER not in ns.metadata.finalizers:
        ns.metadata.finalizers.append(NAMESPACE_FINALIZER)


def _pod_finalizer(pod: Pod, old: Pod | None) -> None:
    if old is None and POD_FINALIZER not in pod.metadata.finalizers:
        pod.metadata.finalizers.append(POD_FINALIZER)


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
    if secret.type == TOKEN_SECRET_TYPE and secret.immutable:
        errors.append(
            FieldError("immutable", f"a {TOKEN_SECRET_TYPE} Secret is filled in by the platform")
        )
    if old is not None and old.type != secret.type and TOKEN_SECRET_TYPE in (old.type, secret.type):
        errors.append(FieldError("type", "field is immutable", "FieldValueForbidden"))
    return errors


def _event_rules(event: Event, old: Event | None) -> list[FieldError]:
    if not event.involved_object.kind or not event.involved_object.name:
        return [FieldError("involvedObject", "kind and name are required", "FieldValueRequired")]
    return []


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _pod_rules(pod: Pod, old: Pod | None) -> list[FieldError]:
    errors = []
    spec = pod.spec
    if not spec.command:
        errors.append(
            FieldError("spec.command", "is required: the program to run", "FieldValueRequired")
        )
    for i, var in enumerate(spec.env):
        if not _ENV_NAME.match(var.name):
            errors.append(
                FieldError(f"spec.env[{i}].name", "must be a C identifier ([A-Za-z_][A-Za-z0-9_]*)")
            )
        if (var.value is None) == (var.value_from is None):
            errors.append(FieldError(f"spec.env[{i}]", "set exactly one of value and valueFrom"))
    req, lim = spec.resources.requests, spec.resources.limits
    for name in set(req) & set(lim):
        if parse_quantity(lim[name]) < parse_quantity(req[name]):
            errors.append(
                FieldError(f"spec.resources.limits.{name}", "must be at least the request")
            )
    if old is not None and old.spec.model_dump(exclude={"node_name"}) != spec.model_dump(
        exclude={"node_name"}
    ):
        errors.append(
            FieldError("spec", "a pod's spec cannot change once created (only nodeName may be set)")
        )
    return errors


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
    KindInfo(
        Pod,
        columns=(
            Column("STATUS", "status.phase"),
            Column("REASON", "status.reason"),
            Column("EXIT", "status.exitCode"),
            Column("NODE", "spec.nodeName", wide=True),
        ),
        defaulters=(_pod_finalizer,),
        validators=(_pod_rules,),
    ),
    KindInfo(
        Node,
        columns=(
            Column("CPU", "status.capacity.cpu"),
            Column("MEMORY", "status.capacity.memory"),
            Column("GPU", "status.capacity.gpu"),
            Column("RUNTIME", "status.runtime", wide=True),
        ),
    ),
)


def register_kernel(registry: Registry) -> None:
    for info in KERNEL_KINDS:
        registry.register(info)
