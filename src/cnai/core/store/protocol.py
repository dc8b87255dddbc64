"""The Store protocol, shaped so that the Kubernetes API server can implement it.

Rules every implementation keeps (the Kubernetes API's own):
- resourceVersion is an opaque string; clients only echo it back.
- one object per write; there are no multi-object transactions.
- ``update`` changes spec, labels, annotations, finalizers and owner references and
  keeps status; ``update_status`` changes only status. generation bumps only when the
  spec changes.
- ``delete`` of an object with finalizers sets deletionTimestamp and keeps the object
  until an update removes the last finalizer. A ``Foreground`` or ``Orphan``
  propagation adds the garbage collector's finalizer (:data:`FOREGROUND_FINALIZER`,
  :data:`ORPHAN_FINALIZER`) and marks the object in the same write.
- ``watch`` resumes after a resourceVersion and raises :class:`~cnai.core.errors.Gone`
  when that version is older than the retained history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from pydantic_core import from_json, to_json

from cnai.core.selectors import FieldSelector, LabelSelector

Obj = dict[str, Any]

# Kubernetes' names, so the same objects mean the same thing on a real cluster.
FOREGROUND_FINALIZER = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"


class PropagationPolicy(StrEnum):
    """What deleting an owner does to its dependents (Kubernetes' DeleteOptions).

    Background: the owner goes now and the garbage collector deletes its dependents
    afterwards. Foreground: the owner stays, marked and holding
    :data:`FOREGROUND_FINALIZER`, until the dependents that block it are gone. Orphan:
    the dependents are kept and lose their reference to the owner, then the owner goes.
    """

    BACKGROUND = "Background"
    FOREGROUND = "Foreground"
    ORPHAN = "Orphan"

    @property
    def finalizer(self) -> str | None:
        """The finalizer this policy puts on the deleted object, if any."""
        return _POLICY_FINALIZERS.get(self)


_POLICY_FINALIZERS = {
    PropagationPolicy.FOREGROUND: FOREGROUND_FINALIZER,
    PropagationPolicy.ORPHAN: ORPHAN_FINALIZER,
}


class WatchEventType(StrEnum):
    """The kinds of change a watch delivers."""

    ADDED = "ADDED"
    MODIFIED = "MODIFIED"
    DELETED = "DELETED"
    BOOKMARK = "BOOKMARK"
    ERROR = "ERROR"


@dataclass(frozen=True)
class WatchEvent:
    """One change to one object, with the object as it was after the change."""

    type: WatchEventType
    object: Obj
    resource: str = ""
    resource_version: int = 0
    raw: str | None = field(default=None, compare=False)


class ObjectList:
    """A consistent list and the resourceVersion to start a watch from.

    A store that keeps objects as JSON may hand over that text (``raw``) instead of
    parsed objects: the API server then writes it out without parsing and serializing
    every object again, and ``items`` parses it only if someone asks.
    """

    def __init__(
        self,
        items: list[Obj] | None = None,
        resource_version: str = "",
        *,
        raw: list[str] | None = None,
    ) -> None:
        if items is None and raw is None:
            items = []
        self._items = items
        self.raw = raw
        self.resource_version = resource_version

    @property
    def items(self) -> list[Obj]:
        if self._items is None:
            self._items = [from_json(r) for r in self.raw or ()]
        return self._items

    def raw_items(self) -> list[str]:
        """The items as JSON text."""
        if self.raw is None:
            self.raw = [to_json(i).decode() for i in self.items]
        return self.raw


class Store(Protocol):
    """Where objects live. ``resource`` is the kind's plural name (``secrets``)."""

    async def create(self, resource: str, obj: Obj) -> Obj:
        """Insert a new object; raise AlreadyExists if its name is taken."""
        ...

    async def get(self, resource: str, namespace: str | None, name: str) -> Obj:
        """Return one object; raise NotFound."""
        ...

    async def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
    ) -> ObjectList:
        """Objects of a resource, in one namespace or all (namespace None)."""
        ...

    async def update(self, resource: str, obj: Obj) -> Obj:
        """Replace spec and metadata, keep status; Conflict on a stale resourceVersion."""
        ...

    async def update_status(self, resource: str, obj: Obj) -> Obj:
        """Replace only status; Conflict on a stale resourceVersion."""
        ...

    async def delete(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        resource_version: str | None = None,
        propagation: str | None = None,
    ) -> Obj:
        """Delete, or mark for deletion while finalizers remain; return the last state.

        ``propagation`` is a :class:`PropagationPolicy` value; None means Background.
        """
        ...

    def watch(
        self,
        resource: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """Changes after ``resource_version``; with None, first the current objects as ADDED."""
        ...

    async def close(self) -> None:
        """Release connections and end open watches."""
        ...
