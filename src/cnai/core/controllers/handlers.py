"""Event handlers that turn informer changes into keys on a controller's work queue.

Three sources wake a controller (controller-runtime's ``For``, ``Owns`` and ``Watches``):
its own kind enqueues the changed object; an owned kind enqueues the owner named by the
object's controller ownerReference; any other watch enqueues what its mapper returns.
An update maps both the old and the new object, so a reference that moved away still
wakes the object it left.
"""

from __future__ import annotations

from cnai.core.controllers.informer import Handlers
from cnai.core.controllers.types import Mapper, Request
from cnai.core.controllers.workqueue import WorkQueue
from cnai.core.store.protocol import Obj


def enqueue_object(obj: Obj) -> list[Request]:
    """The object itself."""
    return [Request.of(obj)]


def owner_mapper(owner_kind: str, owner_namespaced: bool = True) -> Mapper:
    """Map an object to its controlling owner of ``owner_kind``, in the object's namespace."""

    def owners(obj: Obj) -> list[Request]:
        meta = obj.get("metadata") or {}
        namespace = (meta.get("namespace") or None) if owner_namespaced else None
        return [
            Request(namespace, str(ref["name"]))
            for ref in meta.get("ownerReferences") or ()
            if ref.get("controller") and ref.get("kind") == owner_kind and ref.get("name")
        ]

    return owners


def enqueue_handlers(queue: WorkQueue[Request], mapper: Mapper) -> Handlers:
    """Handlers that add ``mapper``'s requests for every change to ``queue``."""

    def add(obj: Obj) -> None:
        for request in mapper(obj):
            queue.add(request)

    def update(old: Obj, new: Obj) -> None:
        add(old)
        add(new)

    return Handlers(on_add=add, on_update=update, on_delete=add)
