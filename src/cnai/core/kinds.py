"""The kernel kinds: Namespace, Secret and Event (Node and Pod join with the runtime)."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import Field, field_validator

from cnai.core.meta import EmptySpec, Resource, WireModel


class NamespacePhase(StrEnum):
    """Lifecycle of a namespace: Active -> Terminating -> (gone). Terminating is final."""

    ACTIVE = "Active"
    TERMINATING = "Terminating"


class NamespaceStatus(WireModel):
    """Observed state of a namespace."""

    phase: NamespacePhase = Field(
        default=NamespacePhase.ACTIVE, description="Active, or Terminating while being deleted."
    )


class Namespace(Resource):
    """A tenant boundary: namespaced objects, quotas and tokens are scoped to one."""

    KIND: ClassVar[str] = "Namespace"
    PLURAL: ClassVar[str] = "namespaces"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ns",)
    NAMESPACED: ClassVar[bool] = False

    spec: EmptySpec = Field(default_factory=EmptySpec, description="Namespaces have no spec.")
    status: NamespaceStatus = Field(default_factory=NamespaceStatus, description="Phase.")


def _b64_or_error(key: str, value: str) -> str:
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"value of key {key!r} must be base64-encoded") from exc
    return value


class Secret(Resource):
    """Sensitive key/value data that workloads receive by reference.

    Values never appear in ``repr``, logs, tables or ``-o yaml`` output unless asked for.
    """

    KIND: ClassVar[str] = "Secret"
    PLURAL: ClassVar[str] = "secrets"

    type: str = Field(default="Opaque", description="Free-form type, Opaque by default.")
    data: dict[str, str] = Field(default_factory=dict, description="Keys to base64-encoded values.")
    string_data: dict[str, str] | None = Field(
        default=None,
        description="Write-only plain-text values merged into data on write (and then dropped).",
    )
    immutable: bool = Field(default=False, description="If true, data can no longer change.")

    @field_validator("data")
    @classmethod
    def _data_is_base64(cls, data: dict[str, str]) -> dict[str, str]:
        for key, value in data.items():
            _b64_or_error(key, value)
        return data

    def decoded(self) -> dict[str, str]:
        """The values as text (UTF-8)."""
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in self.data.items()}

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            if name in ("data", "string_data") and value:
                yield name, {k: "<redacted>" for k in value}
            else:
                yield name, value


class EventType(StrEnum):
    """Severity of an event."""

    NORMAL = "Normal"
    WARNING = "Warning"


class ObjectReference(WireModel):
    """Identifies the object an event is about."""

    api_version: str = Field(default="cnai.io/v1alpha1", description="API version.")
    kind: str = Field(description="Kind of the object.")
    name: str = Field(description="Name of the object.")
    namespace: str | None = Field(default=None, description="Namespace of the object.")
    uid: str | None = Field(default=None, description="UID of the object.")


class EventSource(WireModel):
    """Which component recorded an event."""

    component: str = Field(default="", description="Controller or server component name.")


class Event(Resource):
    """A notable transition of an object (admitted, preempted, failed...), shown by describe."""

    KIND: ClassVar[str] = "Event"
    PLURAL: ClassVar[str] = "events"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ev",)

    involved_object: ObjectReference = Field(description="The object this event is about.")
    reason: str = Field(default="", description="Short CamelCase reason, e.g. Admitted.")
    message: str = Field(default="", description="Human-readable description.")
    type: EventType = Field(default=EventType.NORMAL, description="Normal or Warning.")
    count: int = Field(default=1, ge=1, description="How many times this event was seen.")
    first_timestamp: datetime | None = Field(default=None, description="First occurrence.")
    last_timestamp: datetime | None = Field(default=None, description="Latest occurrence.")
    source: EventSource = Field(default_factory=EventSource, description="Recording component.")
