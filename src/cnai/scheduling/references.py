"""The reference check every job kind shares: the queue and priority class it names exist.

A job naming a LocalQueue or PriorityClass that does not exist would wait forever as
inadmissible; it is refused at create time instead, naming the field (Kubernetes has
admission webhooks for this; Kueue leaves such a job pending). The namespace's
``default`` queue is not checked: the platform creates it for every namespace.
"""

from __future__ import annotations

from typing import Any

from cnai.core.errors import FieldError
from cnai.core.registry import Lookup
from cnai.scheduling.defaults import DEFAULT

NOT_FOUND = "FieldValueNotFound"


async def queue_references(obj: Any, old: Any | None, exists: Lookup) -> list[FieldError]:
    """``spec.queue`` and ``spec.priorityClassName`` name objects that exist (checked on
    create, and on update when they change)."""
    spec, ns = obj.spec, obj.metadata.namespace
    errors = []
    queue = spec.queue
    changed = old is None or old.spec.queue != queue
    if queue and queue != DEFAULT and changed and not await exists("localqueues", ns, queue):
        message = f"LocalQueue {queue!r} not found in namespace {ns!r}"
        errors.append(FieldError("spec.queue", message, NOT_FOUND))
    name = spec.priority_class_name
    changed = old is None or old.spec.priority_class_name != name
    if name and changed and not await exists("priorityclasses", None, name):
        message = f"PriorityClass {name!r} not found"
        errors.append(FieldError("spec.priorityClassName", message, NOT_FOUND))
    return errors
