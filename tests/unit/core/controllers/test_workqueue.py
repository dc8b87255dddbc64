"""WorkQueue: dedup, one worker per key, re-queue after done, delays, backoff, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from cnai.core.controllers.backoff import Backoff, RateLimiter
from cnai.core.controllers.workqueue import WorkQueue

from .helpers import eventually

pytestmark = pytest.mark.anyio


async def test_a_key_is_queued_at_most_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    for key in ("a", "b", "a", "a", "b"):
        q.add(key)
    assert len(q) == 2
    assert await q.get() == "a"
    assert await q.get() == "b"
    assert len(q) == 0


async def test_a_key_added_while_processing_waits_until_done() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert await q.get() == "a"
    q.add("a")
    q.add("a")
    assert len(q) == 0  # held back: a worker owns "a"
    q.done("a")
    assert len(q) == 1
    assert await q.get() == "a"
    q.done("a")
    assert len(q) == 0  # not added again meanwhile: gone for good


async def test_many_workers_never_process_one_key_at_once() -> None:
    q: WorkQueue[str] = WorkQueue()
    active: dict[str, int] = {}
    worst: dict[str, int] = {}
    processed: list[str] = []

    async def worker() -> None:
        while (key := await q.get()) is not None:
            active[key] = active.get(key, 0) + 1
            worst[key] = max(worst.get(key, 0), active[key])
            await asyncio.sleep(0)  # let others run while we hold the key
            q.add(key if len(processed) < 40 else "x")  # keep re-adding the same keys
            await asyncio.sleep(0)
            active[key] -= 1
            processed.append(key)
            q.done(key)

    workers = [asyncio.create_task(worker()) for _ in range(4)]
    for key in "abc":
        q.add(key)
    await eventually(lambda: len(processed) >= 60, "60 processed keys")
    q.shutdown()
    await asyncio.gather(*workers)
    assert set(worst) >= {"a", "b", "c"}
    assert max(worst.values()) == 1


async def test_a_waiting_getter_is_woken_by_add() -> None:
    q: WorkQueue[str] = WorkQueue()
    getter = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    assert not getter.done()
    q.add("k")
    assert await asyncio.wait_for(getter, 5) == "k"


async def test_a_cancelled_getter_does_not_swallow_a_wakeup() -> None:
    q: WorkQueue[str] = WorkQueue()
    first = asyncio.create_task(q.get())
    second = asyncio.create_task(q.get())
    await asyncio.sleep(0)
    q.add("k")  # wakes the first getter ...
    first.cancel()  # ... which is cancelled before it runs
    assert await asyncio.wait_for(second, 5) == "k"
    assert first.cancelled()


async def test_add_after_hands_keys_out_in_due_order() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("late", 0.05)
    q.add_after("early", 0.01)
    q.add_after("now", 0)
    assert q.delayed() == 2
    assert [await q.get() for _ in range(3)] == ["now", "early", "late"]
    assert q.delayed() == 0


async def test_add_after_keeps_only_the_earliest_timer_per_key() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("k", 60)
    q.add_after("k", 0.01)
    q.add_after("k", 30)  # later than the pending timer: ignored
    assert q.delayed() == 1
    assert await asyncio.wait_for(q.get(), 5) == "k"
    assert q.delayed() == 0  # the 60 s timer was cancelled, not left behind


def test_rate_limiter_doubles_per_key_up_to_the_cap_and_forget_resets() -> None:
    limiter: RateLimiter[str] = RateLimiter(base=0.005, cap=0.04)
    assert [limiter.when("a") for _ in range(6)] == [0.005, 0.01, 0.02, 0.04, 0.04, 0.04]
    assert limiter.when("b") == 0.005  # keys back off independently
    assert limiter.num_requeues("a") == 6
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.005


def test_backoff_survives_many_failures_and_rejects_bad_bounds() -> None:
    limiter: RateLimiter[str] = RateLimiter(base=0.005, cap=60.0)
    for _ in range(5000):
        delay = limiter.when("k")
    assert delay == 60.0
    b = Backoff(0.1, 0.4)
    assert [b.next() for _ in range(4)] == [0.1, 0.2, 0.4, 0.4]
    b.reset()
    assert b.next() == 0.1
    with pytest.raises(ValueError, match="base"):
        RateLimiter(base=0, cap=1)
    with pytest.raises(ValueError, match="base"):
        Backoff(base=2, cap=1)


async def test_add_rate_limited_retries_after_a_growing_delay() -> None:
    q: WorkQueue[str] = WorkQueue(RateLimiter(base=0.001, cap=0.01))
    for attempt in range(1, 4):
        q.add_rate_limited("k")
        assert q.num_requeues("k") == attempt
        assert await asyncio.wait_for(q.get(), 5) == "k"
        q.done("k")
    q.forget("k")
    assert q.num_requeues("k") == 0


async def test_shutdown_wakes_getters_and_ignores_later_adds() -> None:
    q: WorkQueue[str] = WorkQueue()
    getters = [asyncio.create_task(q.get()) for _ in range(3)]
    await asyncio.sleep(0)
    q.add_after("later", 60)
    q.shutdown()
    assert await asyncio.wait_for(asyncio.gather(*getters), 5) == [None, None, None]
    assert q.delayed() == 0  # timers cancelled
    q.add("k")
    q.add_after("k", 0.01)
    assert len(q) == 0
    assert await q.get() is None
    assert q.shutting_down
