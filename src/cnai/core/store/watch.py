"""In-process watch fan-out: committed changes go to every matching subscriber's queue.

A subscriber that falls more than ``max_queue`` events behind is closed with an
``ERROR`` (410) event, as the Kubernetes API server closes slow watchers; the client
re-lists and resumes.

Every write publishes one event, and the platform keeps a watch open on every kind (the
garbage collector, the informers) besides the API's own, so subscribers are indexed by
resource: an event is matched only against the watches of its own kind.
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
    # A watch of a whole kind (no namespace, no selector) wants every event of that kind.
    everything: bool = field(init=False)

    def __post_init__(self) -> None:
        self.everything = (
            self.namespace is None and not self.label_selector and not self.field_selector
        )

    def wants(self, event: WatchEvent) -> bool:
        if event.resource != self.resource:
            return False
        if self.everything:
            return True
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

    max_queue: int = 10_000
    # resource -> its open watches; a resource with none has no entry.
    _by_resource: dict[str, set[Subscriber]] = field(default_factory=dict, repr=False)

    @property
    def subscribers(self) -> set[Subscriber]:
        """Every open watch, of any resource (a new set)."""
        return set().union(*self._by_resource.values())

    def subscribe(
        self,
        resource: str,
        namespace: str | None,
        label_selector: LabelSelector | None,
        field_selector: FieldSelector | None,
    ) -> Subscriber:
        sub = Subscriber(resource, namespace, label_selector, field_selector)
        sub.max_queue = self.max_queue
        self._by_resource.setdefault(resource, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self._by_resource.get(sub.resource)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_resource[sub.resource]

    def publish(self, event: WatchEvent) -> None:
        # offer() never unsubscribes, so the set cannot change while it is walked.
        for sub in self._by_resource.get(event.resource, ()):
            if sub.everything or sub.wants(event):
                sub.offer(event)

    def close_all(self) -> None:
        for sub in self.subscribers:
            sub.offer(WatchEvent(WatchEventType.BOOKMARK, {"closed": True}, sub.resource))
        self._by_resource.clear()


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
