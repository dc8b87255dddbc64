"""The event recorder controllers use to note transitions a user needs to see.

Repeats of the same reason and message on the same object are folded into one Event
whose ``count`` and ``lastTimestamp`` advance, as Kubernetes aggregates events.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cnai.core.errors import AlreadyExists, Conflict, NotFound
from cnai.core.kernel import DEFAULT_NAMESPACE
from cnai.core.kinds import Event, EventSource, EventType, ObjectReference
from cnai.core.meta import ObjectMeta, Resource
from cnai.core.store.protocol import Obj, Store

EVENTS = "events"


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _reference(obj: Obj | Resource) -> ObjectReference:
    data = obj.to_dict() if isinstance(obj, Resource) else obj
    meta = data.get("metadata") or {}
    return ObjectReference(
        api_version=data.get("apiVersion", "cnai.io/v1alpha1"),
        kind=str(data.get("kind", "")),
        name=str(meta.get("name", "")),
        namespace=meta.get("namespace"),
        uid=meta.get("uid"),
    )


class EventRecorder:
    """Records Events about objects on behalf of one component."""

    def __init__(self, store: Store, component: str, clock: Callable[[], datetime] = _utcnow):
        self.store = store
        self.component = component
        self.clock = clock

    async def record(self, obj: Obj | Resource, type: EventType, reason: str, message: str) -> Obj:
        ref = _reference(obj)
        namespace = ref.namespace or DEFAULT_NAMESPACE
        digest = hashlib.sha256(
            f"{ref.kind}/{ref.uid}/{type}/{reason}/{message}".encode()
        ).hexdigest()[:12]
        name = f"{ref.name}.{digest}"
        when = self.clock()
        for _ in range(5):  # retry the read-modify-write on conflicts
            try:
                existing = await self.store.get(EVENTS, namespace, name)
            except NotFound:
                event = Event(
                    metadata=ObjectMeta(name=name, namespace=namespace),
                    involved_object=ref,
                    reason=reason,
                    message=message,
                    type=type,
                    first_timestamp=when,
                    last_timestamp=when,
                    source=EventSource(component=self.component),
                )
                try:
                    return await self.store.create(EVENTS, event.to_dict())
                except AlreadyExists:
                    continue
            bumped: dict[str, Any] = dict(existing)
            bumped["count"] = int(existing.get("count", 1)) + 1
            bumped["lastTimestamp"] = when.strftime("%Y-%m-%dT%H:%M:%SZ")
            try:
                return await self.store.update(EVENTS, bumped)
            except Conflict:
                continue
        raise Conflict(f"could not record event {name} after repeated conflicts")
