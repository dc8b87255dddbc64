"""Namespace deletion: empty a terminating namespace, then release its finalizer.

A small loop in the kernel until the controller manager (next issue) hosts it. Each
delete is a single-object write, so a crash midway is recovered by running again: the
namespace keeps its finalizer until nothing is left in it.
"""

from __future__ import annotations

import asyncio
import logging

from cnai.core.errors import ApiError, NotFound
from cnai.core.kernel import NAMESPACE_FINALIZER
from cnai.core.registry import Registry
from cnai.core.store.protocol import Obj, Store

log = logging.getLogger(__name__)
NAMESPACES = "namespaces"


class NamespaceFinalizer:
    """Watches namespaces and empties each one that is being deleted."""

    def __init__(self, registry: Registry, store: Store, retry_seconds: float = 0.5) -> None:
        self.registry = registry
        self.store = store
        self.retry_seconds = retry_seconds
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Loop forever; a failing step is logged and the watch restarted."""
        while True:
            try:
                async for ev in self.store.watch(NAMESPACES):
                    self._maybe_start(ev.object)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("namespace finalizer watch failed; restarting")
            await asyncio.sleep(self.retry_seconds)

    def _maybe_start(self, ns: Obj) -> None:
        meta = ns.get("metadata") or {}
        name = meta.get("name")
        if not name or not meta.get("deletionTimestamp") or name in self._busy:
            return
        if NAMESPACE_FINALIZER not in (meta.get("finalizers") or []):
            return
        self._busy.add(name)
        task = asyncio.create_task(self._finalize(name))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finalize(self, name: str) -> None:
        try:
            while await self.empty_once(name):
                await asyncio.sleep(self.retry_seconds)
            await self._release(name)
        except Exception:
            log.exception("finalizing namespace %s failed", name)
        finally:
            self._busy.discard(name)

    async def empty_once(self, name: str) -> int:
        """Delete what is in the namespace; return how many objects remain."""
        remaining = 0
        for info in self.registry:
            if not info.namespaced:
                continue
            for obj in (await self.store.list(info.plural, name)).items:
                obj_name = obj["metadata"]["name"]
                try:
                    left = await self.store.delete(info.plural, name, obj_name)
                except NotFound:
                    continue
                except ApiError:
                    # Log the name only: the object may be a Secret.
                    log.warning("could not delete %s/%s in %s", info.plural, obj_name, name)
                    remaining += 1
                    continue
                # Objects with finalizers stay (marked) until their controllers let go.
                if left["metadata"].get("finalizers"):
                    remaining += 1
        return remaining

    async def _release(self, name: str) -> None:
        for _ in range(5):
            try:
                ns = await self.store.get(NAMESPACES, None, name)
            except NotFound:
                return
            ns["metadata"]["finalizers"] = [
                f for f in ns["metadata"].get("finalizers", []) if f != NAMESPACE_FINALIZER
            ]
            try:
                await self.store.update(NAMESPACES, ns)
                return
            except ApiError:
                continue

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
