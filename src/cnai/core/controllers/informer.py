"""Informer: one kind's objects, listed and then watched into an in-memory cache.

Controllers read the cache instead of the store, and handlers hear of every change. The
loop lists, watches from the list's resourceVersion, and when the watch breaks (410
Gone after compaction, a slow watcher cut off, the store restarting it) lists again and
diffs the new list against the cache, so handlers see the adds, updates and deletes they
missed (client-go's Reflector and DeltaFIFO ``Replace``, folded together).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

from cnai.core.controllers.backoff import Backoff
from cnai.core.errors import ApiError, Gone
from cnai.core.selectors import LabelSelector
from cnai.core.store.protocol import Obj, Store, WatchEvent, WatchEventType

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, or "" for cluster-scoped objects; name)


class WatchError(ApiError):
    """A watch ended with an ERROR event other than 410 Gone."""


@dataclass(frozen=True)
class Handlers:
    """Callbacks for one listener. They get the cached objects: read them, never mutate."""

    on_add: Callable[[Obj], None] | None = None
    on_update: Callable[[Obj, Obj], None] | None = None
    on_delete: Callable[[Obj], None] | None = None


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace") or "", str(meta.get("name", ""))


def _meta(obj: Obj, field: str) -> object:
    return (obj.get("metadata") or {}).get(field)


def _version(resource_version: str) -> int | None:
    return int(resource_version) if resource_version.isdigit() else None


class Informer:
    """A cache of one plural's objects across all namespaces, kept current by a watch."""

    def __init__(self, store: Store, plural: str, *, backoff: Backoff | None = None) -> None:
        self.store = store
        self.plural = plural
        self.resource_version = ""  # the newest version the cache reflects
        self._backoff = backoff or Backoff()
        self._cache: dict[Key, Obj] = {}
        self._handlers: list[Handlers] = []
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._gone_in_a_row = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    # -- reading ---------------------------------------------------------------------

    @property
    def has_synced(self) -> bool:
        """True once the first list is in the cache."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    def get(self, namespace: str | None, name: str) -> Obj | None:
        """A copy of one cached object (the caller may change it), or None."""
        obj = self._cache.get((namespace or "", name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(
        self,
        namespace: str | None = None,
        label_selector: LabelSelector | str | None = None,
        *,
        copy_objects: bool = True,
    ) -> list[Obj]:
        """Copies of the cached objects, in one namespace or all, sorted by key; with
        ``copy_objects=False`` the cached objects themselves, which the caller must only
        read (the cache replaces an object on a change, it never changes one)."""
        selector = (
            LabelSelector.parse(label_selector)
            if isinstance(label_selector, str) or label_selector is None
            else label_selector
        )
        out: list[Obj] = []
        for key in sorted(self._cache):
            if namespace is not None and key[0] != namespace:
                continue
            obj = self._cache[key]
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if selector.matches(labels):
                out.append(copy.deepcopy(obj) if copy_objects else obj)
        return out

    async def caught_up(self, resource_version: str, timeout: float) -> bool:
        """Wait until the cache reflects ``resource_version`` (a write the caller made)
        or a later one: True then, False after ``timeout`` or if versions cannot be
        compared (not the store's integers). Read-your-writes for a controller that
        wrote and reads its own objects from the cache."""
        target = _version(resource_version)
        if target is None:
            return False
        if (_version(self.resource_version) or 0) >= target:
            return True
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return False
        finally:
            if (target, waiter) in self._waiters:
                self._waiters.remove((target, waiter))
        return True

    def _advance(self, resource_version: str) -> None:
        self.resource_version = resource_version
        if not self._waiters:
            return
        now = _version(resource_version) or 0
        for target, waiter in list(self._waiters):
            if target <= now and not waiter.done():
                waiter.set_result(None)

    def add_handler(
        self,
        on_add: Callable[[Obj], None] | None = None,
        on_update: Callable[[Obj, Obj], None] | None = None,
        on_delete: Callable[[Obj], None] | None = None,
    ) -> None:
        """Listen for changes; a listener that joins late first hears the cache as adds."""
        self.add_handlers(Handlers(on_add, on_update, on_delete))

    def add_handlers(self, handlers: Handlers) -> None:
        """:meth:`add_handler` with the callbacks already bundled."""
        self._handlers.append(handlers)
        if handlers.on_add is not None:
            for obj in list(self._cache.values()):
                self._call(handlers.on_add, obj, obj)

    # -- running ---------------------------------------------------------------------

    async def run(self) -> None:
        """List and watch until :meth:`stop` (then return) or cancellation (then raise).

        An informer runs once: after :meth:`stop`, ``run`` returns at once.
        """
        if self._task is not None:
            raise RuntimeError(f"informer for {self.plural} is already running")
        if self._stopped:
            return
        self._task = asyncio.create_task(self._loop(), name=f"informer:{self.plural}")
        try:
            await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            # stop() cancelled the loop, not our caller: a normal end.
            if self._stopped and (current is None or current.cancelling() == 0):
                return
            raise
        finally:
            self._task = None

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    async def _loop(self) -> None:
        while True:
            # 1. List: replace the cache and tell handlers what changed since the last list.
            # 2. Watch from the list's version until the watch ends.
            # 3. Decide how soon to list again: at once after a first Gone (compaction is
            #    normal), after a growing delay for errors and clean ends (the store may be
            #    restarting or closing; do not spin on it).
            try:
                await self._list()
                await self._watch()
            except asyncio.CancelledError:
                raise
            except Gone as exc:
                self._gone_in_a_row += 1
                log.info("informer %s: %s; listing again", self.plural, exc)
                if self._gone_in_a_row == 1:
                    continue
                await asyncio.sleep(self._backoff.next())
                continue
            except Exception as exc:
                delay = self._backoff.next()
                log.warning(
                    "informer %s: list/watch failed (%s: %s); retrying in %.2fs",
                    self.plural,
                    type(exc).__name__,
                    exc,
                    delay,
                )
                # The traceback only at debug: a closing store fails this way every time.
                log.debug("informer %s: list/watch failure", self.plural, exc_info=True)
                await asyncio.sleep(delay)
                continue
            await asyncio.sleep(self._backoff.next())

    async def _list(self) -> None:
        listed = await self.store.list(self.plural)
        fresh = {key_of(obj): obj for obj in listed.items}
        old, self._cache = self._cache, fresh
        self._advance(listed.resource_version)
        for key, gone in old.items():
            if key not in fresh:
                self._notify_delete(gone)
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                self._notify_add(obj)
            elif _meta(prev, "uid") != _meta(obj, "uid"):
                # Deleted and created again while we were not watching: two changes.
                self._notify_delete(prev)
                self._notify_add(obj)
            elif _meta(prev, "resourceVersion") != _meta(obj, "resourceVersion"):
                self._notify_update(prev, obj)
        self._synced.set()

    async def _watch(self) -> None:
        stream = self.store.watch(self.plural, resource_version=self.resource_version)
        try:
            async for event in stream:
                self._apply(event)
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()

    def _apply(self, event: WatchEvent) -> None:
        if event.type is WatchEventType.ERROR:
            status = event.object or {}
            message = str(status.get("message", "watch failed"))
            if status.get("code") == Gone.code:
                raise Gone(message)
            raise WatchError(message)
        # A delivered event means the list/watch works again.
        self._backoff.reset()
        self._gone_in_a_row = 0
        if event.resource_version:
            self._advance(str(event.resource_version))
        if event.type is WatchEventType.BOOKMARK:
            return
        obj = event.object
        key = key_of(obj)
        if event.type is WatchEventType.DELETED:
            self._cache.pop(key, None)
            self._notify_delete(obj)
            return
        prev = self._cache.get(key)
        self._cache[key] = obj
        if prev is None:
            self._notify_add(obj)
        elif _meta(prev, "resourceVersion") != _meta(obj, "resourceVersion"):
            self._notify_update(prev, obj)

    # -- notifying -------------------------------------------------------------------

    def _notify_add(self, obj: Obj) -> None:
        for h in list(self._handlers):
            if h.on_add is not None:
                self._call(h.on_add, obj, obj)

    def _notify_update(self, old: Obj, new: Obj) -> None:
        for h in list(self._handlers):
            if h.on_update is not None:
                self._call(h.on_update, new, old, new)

    def _notify_delete(self, obj: Obj) -> None:
        for h in list(self._handlers):
            if h.on_delete is not None:
                self._call(h.on_delete, obj, obj)

    def _call(self, handler: Callable[..., None], about: Obj, *args: Obj) -> None:
        """Run one handler; a failing one is logged (by key, never body) and skipped."""
        try:
            handler(*args)
        except Exception:
            ns, name = key_of(about)
            log.exception("informer %s: handler failed for %s/%s", self.plural, ns, name)
