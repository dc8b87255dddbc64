"""Kubernetes-style object metadata and the base class every kind derives from.

Wire names are camelCase (as in Kubernetes manifests); Python attributes are
snake_case. Every field carries a description that becomes the API reference.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic.alias_generators import to_camel

from cnai.version import GROUP_VERSION

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Label keys: optional DNS-subdomain prefix and a name part (Kubernetes' rule).
LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def dns1123_label_error(value: str) -> str | None:
    """Return why ``value`` is not a DNS-1123 label, or None when it is one."""
    if not value:
        return "must not be empty"
    if len(value) > 63:
        return "must be a DNS-1123 label of at most 63 characters"
    if not DNS1123_LABEL.match(value):
        return (
            "must be a DNS-1123 label: lowercase letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return None


def dns1123_subdomain_error(value: str) -> str | None:
    """Return why ``value`` is not a DNS-1123 subdomain, or None when it is one."""
    if not value:
        return "must not be empty"
    if len(value) > 253:
        return "must be a DNS-1123 subdomain of at most 253 characters"
    if not DNS1123_SUBDOMAIN.match(value):
        return (
            "must be a DNS-1123 subdomain: lowercase letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


def label_key_error(key: str) -> str | None:
    """Validate a label or annotation key: ``[prefix/]name``."""
    prefix, slash, name = key.rpartition("/")
    if slash and (err := dns1123_subdomain_error(prefix)):
        return f"prefix {err}"
    if not name or len(name) > 63 or not LABEL_NAME.match(name):
        return "name part must be 1-63 characters of [A-Za-z0-9_.-], alphanumeric at both ends"
    return None


def label_value_error(value: str) -> str | None:
    """Validate a label value: empty, or a name part of at most 63 characters."""
    if len(value) > 63 or not LABEL_NAME.match(value):
        return "must be at most 63 characters of [A-Za-z0-9_.-], alphanumeric at both ends"
    return None


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        if err := label_key_error(key):
            raise ValueError(f"key {key!r}: {err}")
        if err := label_value_error(value):
            raise ValueError(f"value of {key!r}: {err}")
    return labels


def _check_annotation_keys(annotations: dict[str, str]) -> dict[str, str]:
    for key in annotations:
        if err := label_key_error(key):
            raise ValueError(f"key {key!r}: {err}")
    return annotations


def now() -> datetime:
    """Current UTC time truncated to seconds, as Kubernetes timestamps are."""
    return datetime.now(UTC).replace(microsecond=0)


class WireModel(BaseModel):
    """Base for wire types: camelCase on the wire, snake_case in Python, strict keys."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        serialize_by_alias=True,
        extra="forbid",
        validate_assignment=False,
    )


class OwnerReference(WireModel):
    """Points at the object that owns this one; the garbage collector follows it."""

    api_version: str = Field(default=GROUP_VERSION, description="API version of the owner.")
    kind: str = Field(description="Kind of the owner.")
    name: str = Field(description="Name of the owner.")
    uid: str = Field(description="UID of the owner; a new object with the same name is not it.")
    controller: bool = Field(default=False, description="True if the owner manages this object.")
    block_owner_deletion: bool = Field(
        default=False, description="True if the owner cannot be deleted before this object."
    )


class ObjectMeta(WireModel):
    """Metadata every object has: identity, labels, and the fields the store maintains."""

    name: str = Field(default="", description="Name, unique per kind within a namespace.")
    generate_name: str | None = Field(
        default=None, description="Prefix for a server-generated name when name is empty."
    )
    namespace: str | None = Field(
        default=None, description="Namespace of a namespaced object; empty for cluster-scoped."
    )
    uid: str | None = Field(default=None, description="Unique id set by the server on create.")
    labels: Annotated[dict[str, str], AfterValidator(_check_labels)] = Field(
        default_factory=dict, description="Identifying key/value pairs used by selectors."
    )
    annotations: Annotated[dict[str, str], AfterValidator(_check_annotation_keys)] = Field(
        default_factory=dict, description="Non-identifying key/value metadata."
    )
    resource_version: str | None = Field(
        default=None,
        description="Opaque version of this object; send it back to update without conflicts.",
    )
    generation: int | None = Field(
        default=None, description="Incremented by the server on each change of the spec."
    )
    owner_references: list[OwnerReference] = Field(
        default_factory=list, description="Objects that own this one."
    )
    finalizers: list[str] = Field(
        default_factory=list,
        description="Keys that must be removed before a deleted object goes away.",
    )
    creation_timestamp: datetime | None = Field(
        default=None, description="When the server created the object (UTC)."
    )
    deletion_timestamp: datetime | None = Field(
        default=None, description="When deletion was requested; set while finalizers remain."
    )

    @model_serializer(mode="wrap")
    def _omit_empty(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # As in Kubernetes, empty labels, annotations, finalizers and owners are left
        # out of stored and printed objects; parsing restores them as empty defaults.
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v != {} and v != []}


class Condition(WireModel):
    """One observation about an object, as in Kubernetes ``status.conditions``."""

    type: str = Field(description="Condition type, e.g. Ready or Admitted.")
    status: str = Field(description="True, False or Unknown.")
    reason: str = Field(default="", description="CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable detail.")
    last_transition_time: datetime | None = Field(
        default=None, description="When status last changed."
    )
    observed_generation: int | None = Field(
        default=None, description="The metadata.generation this condition was computed for."
    )


def set_condition(
    conditions: list[Condition],
    type: str,
    value: bool,
    reason: str,
    message: str,
    now: datetime,
) -> bool:
    """Set the condition of ``type`` in ``conditions`` (Kubernetes'
    ``meta.SetStatusCondition``): reason and message follow, the transition time moves
    only when the status does. True if the status changed (or the condition is new)."""
    text = "True" if value else "False"
    old = next((c for c in conditions if c.type == type), None)
    if old is not None and (old.status, old.reason, old.message) == (text, reason, message):
        return False
    changed = old is None or old.status != text
    when = now if changed or old is None else old.last_transition_time
    if old is not None:
        conditions.remove(old)
    conditions.append(
        Condition(type=type, status=text, reason=reason, message=message, last_transition_time=when)
    )
    return changed


def is_true(conditions: list[Condition], type: str) -> bool:
    """Whether the condition of ``type`` is there with status True."""
    return any(c.type == type and c.status == "True" for c in conditions)


def controller_ref(owner: Resource) -> OwnerReference:
    """The owner reference that makes ``owner`` the controller of an object it creates:
    the garbage collector deletes the object with its owner, and the owner's controller
    is woken by the object's changes."""
    return OwnerReference(
        api_version=owner.api_version,
        kind=owner.kind,
        name=owner.metadata.name,
        uid=owner.metadata.uid or "",
        controller=True,
        block_owner_deletion=True,
    )


class EmptySpec(WireModel):
    """A spec with no fields."""


class Resource(WireModel):
    """Base for every kind: apiVersion, kind, metadata; subclasses add spec and status.

    Subclasses set the class variables that the registry reads: ``KIND``, ``PLURAL``,
    ``SHORT_NAMES`` and ``NAMESPACED``.
    """

    KIND: ClassVar[str] = ""
    PLURAL: ClassVar[str] = ""
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ()
    NAMESPACED: ClassVar[bool] = True

    api_version: str = Field(default=GROUP_VERSION, description="Always cnai.io/v1alpha1.")
    kind: str = Field(default="", description="The object's kind.")
    metadata: ObjectMeta = Field(default_factory=ObjectMeta, description="Object metadata.")

    def model_post_init(self, context: Any, /) -> None:
        if not self.kind and self.KIND:
            self.kind = self.KIND

    @classmethod
    def new(cls, name: str, namespace: str | None = None, **fields: Any) -> Self:
        """Build an object with the given name (and namespace, for namespaced kinds)."""
        meta = ObjectMeta(name=name, namespace=namespace if cls.NAMESPACED else None)
        return cls(metadata=meta, **fields)

    def to_dict(self) -> dict[str, Any]:
        """The object as JSON-ready data with wire (camelCase) keys, empty values left out."""
        return self.model_dump(mode="json", exclude_none=True)


class GenericResource(Resource):
    """Any object whose kind this process has no Python type for (spec and status as data)."""

    model_config = ConfigDict(extra="allow")

    spec: dict[str, Any] | None = Field(default=None, description="Desired state.")
    status: dict[str, Any] | None = Field(default=None, description="Observed state.")

    def __repr_args__(self) -> Any:
        # A Secret read without its Python type must not leak values through repr either.
        for name, value in super().__repr_args__():
            if self.kind == "Secret" and name in ("data", "stringData") and isinstance(value, dict):
                yield name, {k: "<redacted>" for k in value}
            else:
                yield name, value
