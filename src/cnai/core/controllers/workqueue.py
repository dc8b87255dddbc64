"""An asyncio work queue with client-go's semantics, for the keys controllers reconcile.

- A key waits in the queue at most once, however often it is added (``dirty``).
- A key being processed is never handed to a second worker: adding it again marks it
  dirty, and ``done(key)`` puts it back in the queue (``processing``).
- ``add_after`` delays an add on the event loop's timers; a key waiting for several
  delays keeps only the earliest.
- ``add_rate_limited`` delays by the key's own exponential backoff, and ``forget``
  resets it once the key succeeds.
- ``shutdown`` stops the queue: getters get None, adds are ignored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from cnai.core.controllers.backoff import RateLimiter

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    """Keys to process, each at most once in the queue and by at most one worker."""

    def __init__(self, rate_limiter: RateLimiter[K] | None = None, name: str = "") -> None:
        self.name = name
        self.rate_limiter: RateLimiter[K] = rate_limiter or RateLimiter()
        self._queue: deque[K] = deque()
        self._dirty: set[K] = set()  # keys that need processing (queued or re-added)
        self._processing: set[K] = set()  # keys a worker holds right now
        self._waiting: dict[K, tuple[float, asyncio.TimerHandle]] = {}  # add_after timers
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shutting_down = False

    def __len__(self) -> int:
        """Keys ready to be handed out (not those being processed or delayed)."""
        return len(self._queue)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def delayed(self) -> int:
        """Keys waiting for an ``add_after`` timer."""
        return len(self._waiting)

    # -- adding ----------------------------------------------------------------------

    def add(self, key: K) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        # A key a worker holds goes back in the queue when that worker calls done().
        if key in self._processing:
            return
        self._queue.append(key)
        self._wake_one()

    def add_after(self, key: K, delay: float) -> None:
        """Add ``key`` once ``delay`` seconds have passed (at once when not positive)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        pending = self._waiting.get(key)
        if pending is not None:
            if pending[0] <= due:
                return  # an earlier timer already covers this add
            pending[1].cancel()
        handle = loop.call_at(due, self._fire, key)
        self._waiting[key] = (due, handle)

    def add_rate_limited(self, key: K) -> None:
        """Add ``key`` after its backoff, which doubles with each call until ``forget``."""
        self.add_after(key, self.rate_limiter.when(key))

    def forget(self, key: K) -> None:
        self.rate_limiter.forget(key)

    def num_requeues(self, key: K) -> int:
        return self.rate_limiter.num_requeues(key)

    def _fire(self, key: K) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    # -- taking ----------------------------------------------------------------------

    async def get(self) -> K | None:
        """The next key, waiting for one; None once the queue is shut down.

        The caller owns the key until it calls :meth:`done`.
        """
        while not self._queue and not self._shutting_down:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # A wake-up meant for this getter must not be lost with it.
                if waiter.done() and not waiter.cancelled():
                    self._wake_one()
                raise
            finally:
                if waiter in self._getters:
                    self._getters.remove(waiter)
        if self._shutting_down:
            return None
        key = self._queue.popleft()
        self._dirty.discard(key)
        self._processing.add(key)
        return key

    def done(self, key: K) -> None:
        """The worker is finished with ``key``; if it was added meanwhile, queue it again."""
        self._processing.discard(key)
        if key in self._dirty and not self._shutting_down:
            self._queue.append(key)
            self._wake_one()

    def _wake_one(self) -> None:
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # -- stopping --------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop handing out keys: waiting and later getters get None, adds are ignored.

        Keys still queued are dropped; reconciles are level-triggered, so the next start
        lists everything again.
        """
        self._shutting_down = True
        self._queue.clear()
        self._dirty.clear()
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        while self._getters:
            waiter = self._getters.popleft()
            if not waiter.done():
                waiter.set_result(None)
