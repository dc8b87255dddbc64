"""In-process watch fan-out: committed changes go to every matching subscriber's queue.

A subscriber that falls more than ``max_queue`` events behind is closed with an
``ERROR`` (410) event, as the Kubernetes API server closes slow watchers; the client
re-lists and resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from cnai.core.selectors import FieldSelector, LabelSelector
from cnai.core.store.protocol import WatchEvent, WatchEventType


@dataclass(eq=False)
class Subscriber:
    """One open watch: what it wants and the queue its events wait in."""

    resource: str
    namespace: str | None
    label_selector: LabelSelector | None
    field_selector: FieldSelector | None
    queue: asyncio.Queue[WatchEvent] = field(default_factory=asyncio.Queue)
    max_queue: int = 10_000
    overflowed: bool = False

    def wants(self, event: WatchEvent) -> bool:
        if event.resource != self.resource:
            return False
        meta = event.object.get("metadata", {})
        if self.namespace is not None and meta.get("namespace", "") != self.namespace:
            return False
        if self.label_selector and not self.label_selector.matches(meta.get("labels") or {}):
            return False
        return not (self.field_selector and not self.field_selector.matches(event.object))

    def offer(self, event: WatchEvent) -> None:
        if self.overflowed:
            return
        if self.queue.qsize() >= self.max_queue:
            self.overflowed = True
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "status": "Failure",
                "reason": "Expired",
                "code": 410,
                "message": "watch fell too far behind; list again and resume",
            }
            self.queue.put_nowait(WatchEvent(WatchEventType.ERROR, status, self.resource))
            return
        self.queue.put_nowait(event)


@dataclass
class Broadcaster:
    """Delivers each committed change to the subscribers that match it."""

    subscribers: set[Subscriber] = field(default_factory=set)
    max_queue: int = 10_000

    def subscribe(
        self,
        resource: str,
        namespace: str | None,
        label_selector: LabelSelector | None,
        field_selector: FieldSelector | None,
    ) -> Subscriber:
        sub = Subscriber(resource, namespace, label_selector, field_selector)
        sub.max_queue = self.max_queue
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, event: WatchEvent) -> None:
        for sub in self.subscribers:
            if sub.wants(event):
                sub.offer(event)

    def close_all(self) -> None:
        for sub in list(self.subscribers):
            sub.offer(WatchEvent(WatchEventType.BOOKMARK, {"closed": True}, sub.resource))
        self.subscribers.clear()


class WatchStream:
    """An open watch whose subscription ends when it is closed, even before its first event.

    Closing a not-yet-started async generator skips its ``finally``, so a watch that is
    dropped unread (``timeoutSeconds=0``, a client gone before streaming began) would
    otherwise stay subscribed and keep queueing events forever.
    """

    def __init__(
        self,
        broadcaster: Broadcaster,
        sub: Subscriber,
        events: AsyncGenerator[WatchEvent, None],
    ) -> None:
        self._broadcaster = broadcaster
        self._sub = sub
        self._events = events

    def __aiter__(self) -> WatchStream:
        return self

    async def __anext__(self) -> WatchEvent:
        return await anext(self._events)

    async def aclose(self) -> None:
        self._broadcaster.unsubscribe(self._sub)
        await self._events.aclose()

    def __del__(self) -> None:
        self._broadcaster.unsubscribe(self._sub)
