"""TTL clean-up: Events and finished, unowned Pods are deleted once they are old enough.

The garbage collector runs :meth:`TTLSweeper.sweep_once` every interval. Ages come from
the injected clock. A Pod that has an owner is left alone: its owner (a Job with
``ttlSecondsAfterFinished``, say) decides when it goes, and the cascade takes the Pod
with it. Deleting a Pod object is what makes its runtime remove the Pod's files and logs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from cnai.core.clock import Clock
from cnai.core.errors import Conflict, NotFound
from cnai.core.pods import PodPhase
from cnai.core.store.protocol import Obj, Store

log = logging.getLogger(__name__)
EVENTS = "events"
PODS = "pods"
_FINISHED = frozenset(p.value for p in PodPhase if p.terminal)


def parse_time(value: object) -> datetime | None:
    """A stored timestamp (``2024-01-02T03:04:05Z``) as an aware datetime, or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo else None


def event_expired(event: Obj, now: datetime, ttl: timedelta) -> bool:
    """True when the event was last seen more than ``ttl`` ago."""
    meta = event.get("metadata") or {}
    for key in (event.get("lastTimestamp"), event.get("firstTimestamp")):
        if (when := parse_time(key)) is not None:
            return now - when > ttl
    created = parse_time(meta.get("creationTimestamp"))
    return created is not None and now - created > ttl


def pod_expired(pod: Obj, now: datetime, ttl: timedelta) -> bool:
    """True for a finished pod without owners that finished more than ``ttl`` ago."""
    meta = pod.get("metadata") or {}
    if meta.get("ownerReferences") or meta.get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") not in _FINISHED:
        return False
    finished = parse_time(status.get("finishTime"))
    return finished is not None and now - finished > ttl


class TTLSweeper:
    """Deletes expired Events and (with a pod TTL) expired finished Pods."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        *,
        event_ttl: float | None = 3600.0,
        pod_ttl: float | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.event_ttl = None if event_ttl is None else timedelta(seconds=event_ttl)
        self.pod_ttl = None if pod_ttl is None else timedelta(seconds=pod_ttl)

    async def sweep_once(self) -> int:
        """Delete what has expired now; return how many objects were deleted."""
        now = self.clock.now()
        deleted = 0
        if self.event_ttl is not None:
            ttl = self.event_ttl
            for event in (await self.store.list(EVENTS)).items:
                if event_expired(event, now, ttl):
                    deleted += await self._delete(EVENTS, event)
        if self.pod_ttl is not None:
            ttl = self.pod_ttl
            for pod in (await self.store.list(PODS)).items:
                if pod_expired(pod, now, ttl):
                    deleted += await self._delete(PODS, pod)
        if deleted:
            log.info("gc: deleted %d expired objects", deleted)
        return deleted

    async def _delete(self, resource: str, obj: Obj) -> int:
        meta = obj["metadata"]
        # Guarded by the version just read: an object that changed since is judged again.
        try:
            await self.store.delete(
                resource, meta.get("namespace"), meta["name"], meta.get("resourceVersion")
            )
        except (NotFound, Conflict):
            return 0
        return 1
