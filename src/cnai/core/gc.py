"""The garbage collector: deletion propagation through ownerReferences, and TTL clean-up.

Modelled on Kubernetes' garbage collector. One list+watch per registered kind keeps a
graph of every object's identity and owner references, indexed owner uid -> dependents.
Changes put work items on one queue, and one worker handles them, reading each object
live from the store before it acts (the graph only says where to look):

1. a *dependent* whose owners may be gone: owners are looked up by kind, name and uid
   (an owner lives in the dependent's namespace, or is cluster-scoped: Kubernetes'
   rule). With no owner left, the dependent is deleted (background cascade); with a live
   owner left, it only loses its references to the missing ones. An owner that is being
   deleted in the foreground counts as missing, and a dependent that has dependents of
   its own is then deleted in the foreground too, so the whole chain goes bottom-up.
2. an *owner* being deleted with the ``foregroundDeletion`` finalizer: its dependents are
   deleted; once none is left whose reference sets ``blockOwnerDeletion``, the finalizer
   is removed, which deletes the owner.
3. an *owner* being deleted with the ``orphan`` finalizer: its dependents lose their
   reference to it, then the finalizer is removed.

At start, and whenever a kind is listed again (a watch error or 410), a full scan
queues every object whose owner is missing, so objects left by a crash are collected.
Each write is a single-object write, guarded by the resourceVersion just read, so a
crash at any point is recovered by running again. A kind that this process does not
know counts as a live owner: an unregistered capability never cascades a deletion.

Like Kubernetes' collector, the graph follows one watch per kind, so a dependent created
a moment before its owner is deleted may be seen after the owner is processed; the
worker yields to the watches before each item to keep that window to what is in flight.

Logs name objects by kind, namespace and name only: bodies may be Secrets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from cnai.core.clock import Clock, RealClock
from cnai.core.errors import ApiError, Conflict, Gone, NotFound
from cnai.core.registry import Registry
from cnai.core.store.protocol import (
    FOREGROUND_FINALIZER,
    ORPHAN_FINALIZER,
    Obj,
    PropagationPolicy,
    Store,
    WatchEventType,
)
from cnai.core.ttl import TTLSweeper

log = logging.getLogger(__name__)

# How many times a read-modify-write is retried on a conflict before the item is requeued.
_EDIT_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """The parts of an ownerReference the collector uses."""

    uid: str
    kind: str
    name: str
    block: bool

    @classmethod
    def parse(cls, ref: Any) -> OwnerRef | None:
        if not isinstance(ref, dict) or not ref.get("uid"):
            return None
        return cls(
            str(ref["uid"]),
            str(ref.get("kind", "")),
            str(ref.get("name", "")),
            bool(ref.get("blockOwnerDeletion")),
        )


def owner_refs(obj: Obj) -> tuple[OwnerRef, ...]:
    return _parse_refs((obj.get("metadata") or {}).get("ownerReferences"))


def _parse_refs(refs: Any) -> tuple[OwnerRef, ...]:
    if not refs:
        return ()  # most objects: no generator to build and throw away
    return tuple(r for r in map(OwnerRef.parse, refs) if r is not None)


# Shared by every node without finalizers (most of them), instead of one empty set each.
_NO_FINALIZERS: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Node:
    """One object as the graph knows it: identity, owners and deletion state."""

    resource: str
    namespace: str
    name: str
    uid: str
    owners: tuple[OwnerRef, ...]
    deleting: bool
    finalizers: frozenset[str]

    @classmethod
    def of(cls, resource: str, obj: Obj) -> Node | None:
        meta = obj.get("metadata") or {}
        uid = meta.get("uid")
        if not uid:
            return None
        finalizers = meta.get("finalizers")
        return cls(
            resource,
            meta.get("namespace") or "",
            meta.get("name") or "",
            uid,
            _parse_refs(meta.get("ownerReferences")),
            bool(meta.get("deletionTimestamp")),
            frozenset(finalizers) if finalizers else _NO_FINALIZERS,
        )

    @property
    def plain(self) -> bool:
        """No owners and not being deleted: nothing this collector does starts from it."""
        return not self.owners and not self.deleting

    @property
    def deleting_dependents(self) -> bool:
        return self.deleting and FOREGROUND_FINALIZER in self.finalizers

    @property
    def orphaning(self) -> bool:
        return self.deleting and ORPHAN_FINALIZER in self.finalizers

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.resource} {where}{self.name}"


class Graph:
    """Objects by uid and the owner uid -> dependent uids index (owners may be absent)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self._dependents: dict[str, set[str]] = {}

    def upsert(self, node: Node) -> Node | None:
        old = self.remove(node.uid)
        self.nodes[node.uid] = node
        for ref in node.owners:
            self._dependents.setdefault(ref.uid, set()).add(node.uid)
        return old

    def remove(self, uid: str) -> Node | None:
        old = self.nodes.pop(uid, None)
        for ref in old.owners if old else ():
            deps = self._dependents.get(ref.uid)
            if deps is not None:
                deps.discard(uid)
                if not deps:
                    del self._dependents[ref.uid]
        return old

    def dependents(self, uid: str) -> list[Node]:
        return [self.nodes[d] for d in self._dependents.get(uid, ()) if d in self.nodes]

    def uids_of(self, resource: str) -> set[str]:
        return {uid for uid, n in self.nodes.items() if n.resource == resource}

    def solid(self, uid: str, namespace: str = "") -> bool:
        """True when the owner of a dependent in ``namespace`` is known and not waiting
        for its dependents to go. An owner in another namespace is no owner at all."""
        node = self.nodes.get(uid)
        if node is None or node.deleting_dependents:
            return False
        return not node.namespace or node.namespace == namespace

    def owners_in_doubt(self, node: Node) -> bool:
        """True when some owner of ``node`` may be missing: the store must be asked."""
        return any(not self.solid(ref.uid, node.namespace) for ref in node.owners)


class Action(StrEnum):
    """What a queued uid needs: a check of its owners, or its own finalizer handled."""

    DEPENDENT = "dependent"
    OWNER = "owner"


class OwnerState(StrEnum):
    """How a dependent's owner stands, read live from the store."""

    SOLID = "solid"  # exists (or cannot be checked): the dependent stays
    ABSENT = "absent"  # gone, or replaced by a new object of the same name
    WAITING = "waiting"  # being deleted in the foreground: its dependents must go


class GarbageCollector:
    """Deletes dependents of deleted owners, honours Foreground and Orphan, expires TTLs."""

    def __init__(
        self,
        registry: Registry,
        store: Store,
        clock: Clock | None = None,
        *,
        event_ttl: float | None = 3600.0,
        pod_ttl: float | None = None,
        ttl_interval: float = 60.0,
        retry_seconds: float = 0.5,
    ) -> None:
        self.registry = registry
        self.store = store
        self.retry_seconds = retry_seconds
        self.ttl_interval = ttl_interval
        self.sweeper = TTLSweeper(store, clock or RealClock(), event_ttl=event_ttl, pod_ttl=pod_ttl)
        self.graph = Graph()
        self._queue: asyncio.Queue[tuple[Action, str]] = asyncio.Queue()
        self._queued: set[tuple[Action, str]] = set()
        self._synced: dict[str, asyncio.Event] = {}
        self._ready = False
        self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._retries: set[asyncio.TimerHandle] = set()

    # -- loops --------------------------------------------------------------------------

    async def run(self) -> None:
        """Run until cancelled: one watch per kind, the worker and the TTL sweep."""
        plurals = [info.plural for info in self.registry]
        self._synced = {p: asyncio.Event() for p in plurals}
        coros = [self._watch_kind(p) for p in plurals] + [self._work(), self._sweep_ttl()]
        tasks = [asyncio.create_task(c) for c in coros]
        self._tasks.update(tasks)
        try:
            await asyncio.gather(*tasks)
        finally:
            await self.stop()

    async def stop(self) -> None:
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        tasks = list(self._tasks)
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _watch_kind(self, plural: str) -> None:
        """List, then watch from the list's version; list again after any failure."""
        while True:
            try:
                listed = await self.store.list(plural)
                self._relist(plural, listed.items)
                events = self.store.watch(plural, resource_version=listed.resource_version)
                try:
                    async for ev in events:
                        if ev.type is WatchEventType.ERROR:
                            break  # fell behind (410): list again
                        if ev.type is not WatchEventType.BOOKMARK:
                            self._observe(plural, ev.type, ev.object)
                finally:
                    aclose = getattr(events, "aclose", None)
                    if aclose is not None:
                        await aclose()
            except asyncio.CancelledError:
                raise
            except Gone:
                log.info("gc: watch of %s expired; listing again", plural)
            except Exception:
                log.exception("gc: watch of %s failed; listing again", plural)
            await asyncio.sleep(self.retry_seconds)

    async def _work(self) -> None:
        """Handle queued items one at a time, after every kind has been listed once."""
        for synced in self._synced.values():
            await synced.wait()
        self._ready = True
        self._scan()
        while True:
            item = await self._queue.get()
            self._busy = True
            try:
                self._queued.discard(item)
                # Let the watches apply what is already committed before this item is read.
                await asyncio.sleep(0)
                await self._handle(item)
            finally:
                self._busy = False

    def is_idle(self) -> bool:
        """True when every kind is listed and no item is queued, running or waiting to retry."""
        return self._ready and not (self._busy or self._queued or self._retries)

    async def _sweep_ttl(self) -> None:
        while True:
            try:
                await self.sweeper.sweep_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("gc: TTL sweep failed; retrying at the next interval")
            await asyncio.sleep(self.ttl_interval)

    # -- the graph ----------------------------------------------------------------------

    def _relist(self, plural: str, items: Iterable[Obj]) -> None:
        """Replace what the graph knows of one kind, then scan for missing owners."""
        stale = self.graph.uids_of(plural)
        for obj in items:
            node = Node.of(plural, obj)
            if node is not None:
                stale.discard(node.uid)
                self._apply(node)
        for uid in stale:
            self._forget(uid)
        synced = self._synced.get(plural)
        relisted = synced is not None and synced.is_set()
        if synced is not None:
            synced.set()
        if relisted:
            self._scan()  # what changed while the watch was down

    def _observe(self, plural: str, type: WatchEventType, obj: Obj) -> None:
        node = Node.of(plural, obj)
        if node is None:
            return
        if type is WatchEventType.DELETED:
            self._forget(node.uid)
        else:
            self._apply(node)

    def _apply(self, node: Node) -> None:
        old = self.graph.upsert(node)
        if node.plain and (old is None or not old.owners):
            # Most events (every create of an ownerless object): only the graph changes.
            # Keep in sync with the steps below: none of them acts on such a node.
            return
        if node.deleting_dependents or node.orphaning:
            self._enqueue(Action.OWNER, node.uid)
        # Before every kind is listed, owners may just not be known yet: the scan that
        # follows the first listing checks them all at once.
        if self._ready and self.graph.owners_in_doubt(node):
            self._enqueue(Action.DEPENDENT, node.uid)
        self._wake_owners(node.owners + (old.owners if old else ()))
        if node.deleting_dependents and not (old and old.deleting_dependents):
            for dep in self.graph.dependents(node.uid):
                self._enqueue(Action.DEPENDENT, dep.uid)

    def _forget(self, uid: str) -> None:
        old = self.graph.remove(uid)
        for dep in self.graph.dependents(uid):
            self._enqueue(Action.DEPENDENT, dep.uid)
        if old is not None:
            self._wake_owners(old.owners)

    def _wake_owners(self, refs: Iterable[OwnerRef]) -> None:
        """An owner waiting in the foreground looks again when a dependent changes."""
        for ref in refs:
            owner = self.graph.nodes.get(ref.uid)
            if owner is not None and owner.deleting_dependents:
                self._enqueue(Action.OWNER, owner.uid)

    def _scan(self) -> None:
        """Queue every object with a missing owner and every owner holding a GC finalizer."""
        for node in list(self.graph.nodes.values()):
            if node.deleting_dependents or node.orphaning:
                self._enqueue(Action.OWNER, node.uid)
            if self.graph.owners_in_doubt(node):
                self._enqueue(Action.DEPENDENT, node.uid)

    def _enqueue(self, action: Action, uid: str) -> None:
        item = (action, uid)
        if item not in self._queued:
            self._queued.add(item)
            self._queue.put_nowait(item)

    def _retry_later(self, item: tuple[Action, str]) -> None:
        def fire() -> None:
            self._retries.discard(handle)
            self._enqueue(*item)

        handle = asyncio.get_running_loop().call_later(self.retry_seconds, fire)
        self._retries.add(handle)

    # -- work items ---------------------------------------------------------------------

    async def _handle(self, item: tuple[Action, str]) -> None:
        action, uid = item
        node = self.graph.nodes.get(uid)
        if node is None:
            return
        try:
            if action is Action.OWNER:
                await self.process_owner(node)
            else:
                await self.process_dependent(node)
        except asyncio.CancelledError:
            raise
        except NotFound:
            return  # it went while this item was handled: nothing left to do
        except Conflict:
            self._retry_later(item)
        except ApiError as exc:
            log.warning("gc: %s: %s; will retry", node.describe(), exc.message)
            self._retry_later(item)
        except Exception:
            log.exception("gc: handling %s failed; will retry", node.describe())
            self._retry_later(item)

    async def _read(self, node: Node) -> Obj | None:
        """The object as stored now, or None when it is gone or is a new one by that name."""
        try:
            obj = await self.store.get(node.resource, node.namespace or None, node.name)
        except NotFound:
            return None
        return obj if obj["metadata"].get("uid") == node.uid else None

    async def process_dependent(self, node: Node) -> None:
        """Delete a dependent whose owners are all gone, or drop references to missing ones."""
        obj = await self._read(node)
        if obj is None:
            return
        current = Node.of(node.resource, obj)
        assert current is not None
        if current.deleting:
            if current.deleting_dependents or current.orphaning:
                self._enqueue(Action.OWNER, current.uid)
            return
        states = {ref.uid: await self._owner_state(current, ref) for ref in current.owners}
        if not states:
            return
        gone = {uid for uid, s in states.items() if s is not OwnerState.SOLID}
        if len(gone) < len(states):
            if gone:
                await self._drop_owner_refs(current, gone)
            return
        waiting = OwnerState.WAITING in states.values()
        policy = None
        rv = obj["metadata"].get("resourceVersion")
        dependents = self.graph.dependents(current.uid)
        if waiting and dependents:
            policy = PropagationPolicy.FOREGROUND  # the chain goes bottom-up
            if any(d.deleting_dependents for d in dependents):
                # A cycle of foreground deletions would wait on itself forever: this
                # object stops blocking its owners first (Kubernetes does the same).
                rv = await self._unblock_owner_refs(current)
        log.info("gc: deleting %s: its owners are gone", current.describe())
        with contextlib.suppress(NotFound):
            await self.store.delete(
                current.resource, current.namespace or None, current.name, rv, policy
            )

    async def _owner_state(self, dependent: Node, ref: OwnerRef) -> OwnerState:
        info = self.registry.resolve(ref.kind) if ref.kind else None
        if info is None:
            return OwnerState.SOLID  # unknown kind: never cascade on a guess
        if info.namespaced and not dependent.namespace:
            return OwnerState.ABSENT  # a cluster-scoped object cannot have a namespaced owner
        namespace = dependent.namespace if info.namespaced else None
        try:
            owner = await self.store.get(info.plural, namespace, ref.name)
        except NotFound:
            return OwnerState.ABSENT
        meta = owner["metadata"]
        if meta.get("uid") != ref.uid:
            return OwnerState.ABSENT
        if meta.get("deletionTimestamp") and FOREGROUND_FINALIZER in (meta.get("finalizers") or []):
            return OwnerState.WAITING
        return OwnerState.SOLID

    async def process_owner(self, node: Node) -> None:
        """Handle an owner's Orphan or Foreground finalizer."""
        obj = await self._read(node)
        if obj is None:
            return
        current = Node.of(node.resource, obj)
        assert current is not None
        if current.orphaning:
            for dep in self.graph.dependents(current.uid):
                await self._drop_owner_refs(dep, {current.uid})
            await self._remove_finalizer(current, ORPHAN_FINALIZER)
            log.info("gc: %s deleted; its dependents were orphaned", current.describe())
        elif current.deleting_dependents:
            blocking = []
            for dep in self.graph.dependents(current.uid):
                if not dep.deleting:
                    self._enqueue(Action.DEPENDENT, dep.uid)
                if any(r.uid == current.uid and r.block for r in dep.owners):
                    blocking.append(dep)
            if not blocking:
                await self._remove_finalizer(current, FOREGROUND_FINALIZER)

    # -- single-object edits ------------------------------------------------------------

    async def _edit(self, node: Node, change: Callable[[Obj], bool]) -> None:
        """Read, change and update one object, retrying conflicts; no-op if it is gone."""
        for _ in range(_EDIT_ATTEMPTS):
            obj = await self._read(node)
            if obj is None or not change(obj):
                return
            try:
                await self.store.update(node.resource, obj)
                return
            except Conflict:
                continue
            except NotFound:
                return
        raise Conflict(f"{node.describe()} kept changing; will retry")

    async def _drop_owner_refs(self, node: Node, uids: set[str]) -> None:
        def change(obj: Obj) -> bool:
            meta = obj["metadata"]
            refs = meta.get("ownerReferences") or []
            kept = [r for r in refs if not (isinstance(r, dict) and r.get("uid") in uids)]
            if len(kept) == len(refs):
                return False
            if kept:
                meta["ownerReferences"] = kept
            else:
                meta.pop("ownerReferences", None)
            return True

        await self._edit(node, change)

    async def _unblock_owner_refs(self, node: Node) -> str | None:
        """Clear blockOwnerDeletion on every reference; return the new resourceVersion."""
        obj = await self._read(node)
        if obj is None:
            raise NotFound(f"{node.describe()} is gone")
        refs = obj["metadata"].get("ownerReferences") or []
        for ref in refs:
            if isinstance(ref, dict):
                ref.pop("blockOwnerDeletion", None)
        updated = await self.store.update(node.resource, obj)
        rv: str | None = updated["metadata"].get("resourceVersion")
        return rv

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        def change(obj: Obj) -> bool:
            meta = obj["metadata"]
            finalizers = meta.get("finalizers") or []
            if finalizer not in finalizers:
                return False
            meta["finalizers"] = [f for f in finalizers if f != finalizer]
            return True

        await self._edit(node, change)
