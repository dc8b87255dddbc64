"""Adaptive batching on a real event loop with a recording predict: each caller gets its
own rows, batches respect their size and wait, errors reach the whole batch."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import pytest

from cnai.serving.batching import INLINE_MAX_S, Batcher, BatchError
from cnai.serving.codec import Array

pytestmark = pytest.mark.anyio


class Recorder:
    """A predict that records each call's rows and thread: outputs are the rows times
    ten and their row sums (two outputs, so splitting is checked on both)."""

    def __init__(self, fail: Exception | None = None, rows_out: int | None = None) -> None:
        self.calls: list[int] = []
        self.threads: list[threading.Thread] = []
        self.fail = fail
        self.rows_out = rows_out

    def __call__(self, inputs: list[Array]) -> list[Array]:
        self.calls.append(inputs[0].shape[0])
        self.threads.append(threading.current_thread())
        if self.fail is not None:
            raise self.fail
        x = inputs[0]
        if self.rows_out is not None:
            x = x[: self.rows_out]
        return [x * 10, x.sum(axis=1)]


def rows(start: int, n: int, width: int = 2) -> Array:
    return np.arange(start, start + n * width, dtype=np.float64).reshape(n, width)


async def test_concurrent_callers_each_get_their_own_rows_from_one_predict() -> None:
    predict = Recorder()
    seen: list[int] = []
    batcher = Batcher(predict, max_batch_size=10, max_latency_ms=10_000, on_batch=seen.append)
    requests = [rows(100 * i, n) for i, n in enumerate([1, 3, 2, 4])]  # 10 rows: a full batch
    results = await asyncio.gather(*(batcher.submit([x]) for x in requests))
    assert predict.calls == [10]
    assert seen == [10]
    for x, (times_ten, sums) in zip(requests, results, strict=True):
        np.testing.assert_array_equal(times_ten, x * 10)
        np.testing.assert_array_equal(sums, x.sum(axis=1))


@pytest.mark.parametrize(
    ("sizes", "max_batch", "calls"),
    [
        pytest.param([1] * 10, 4, [4, 4, 2], id="ten-rows-in-batches-of-at-most-4"),
        pytest.param([3, 3, 3], 4, [3, 3, 3], id="a-request-is-never-split"),
        pytest.param([2, 5, 1], 4, [3, 5], id="an-oversized-request-runs-alone-the-rest-batch"),
        pytest.param([1, 2, 1, 3], 4, [4, 3], id="fills-to-exactly-the-maximum"),
    ],
)
async def test_batches_never_exceed_max_batch_size(
    sizes: list[int], max_batch: int, calls: list[int]
) -> None:
    predict = Recorder()
    batcher = Batcher(predict, max_batch_size=max_batch, max_latency_ms=20)
    requests = [rows(100 * i, n) for i, n in enumerate(sizes)]
    results = await asyncio.gather(*(batcher.submit([x]) for x in requests))
    assert sorted(predict.calls) == sorted(calls)
    for x, (times_ten, _) in zip(requests, results, strict=True):
        np.testing.assert_array_equal(times_ten, x * 10)


async def test_a_lone_request_waits_for_the_latency_then_runs_without_company() -> None:
    predict = Recorder()
    batcher = Batcher(predict, max_batch_size=8, max_latency_ms=50)
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = asyncio.create_task(batcher.submit([rows(0, 1)]))
    for _ in range(5):  # several loop iterations: still queued, not predicted
        await asyncio.sleep(0)
    assert predict.calls == []
    assert batcher.queued == 1
    times_ten, _ = await task
    # The batch left when its timer fired: never before the latency (less the clock's
    # resolution, by which asyncio may fire a timer early).
    assert loop.time() - started >= 0.050 - 0.002
    assert predict.calls == [1]
    assert times_ten.tolist() == [[0.0, 10.0]]


async def test_a_predict_error_reaches_every_caller_of_that_batch_only() -> None:
    predict = Recorder(fail=ValueError("model exploded"))
    batcher = Batcher(predict, max_batch_size=3, max_latency_ms=10_000)
    results = await asyncio.gather(
        *(batcher.submit([rows(i, 1)]) for i in range(3)), return_exceptions=True
    )
    assert predict.calls == [3]
    assert all(isinstance(r, ValueError) and str(r) == "model exploded" for r in results)
    predict.fail = None  # the next batch is unaffected
    results = await asyncio.gather(*(batcher.submit([rows(i, 1)]) for i in range(3)))
    assert [r[0][0, 0] for r in results] == [0.0, 10.0, 20.0]


async def test_outputs_that_cannot_be_split_fail_the_batch() -> None:
    batcher = Batcher(Recorder(rows_out=1), max_batch_size=2, max_latency_ms=10_000)
    results = await asyncio.gather(
        batcher.submit([rows(0, 1)]), batcher.submit([rows(5, 1)]), return_exceptions=True
    )
    assert all(isinstance(r, BatchError) for r in results)
    assert "model output 0 has 1 rows for a batch of 2 rows" in str(results[0])


async def test_requests_that_cannot_be_stacked_are_predicted_apart_in_the_same_flush() -> None:
    predict = Recorder()
    batcher = Batcher(predict, max_batch_size=4, max_latency_ms=10_000)
    narrow, wide = rows(0, 2, width=2), rows(0, 2, width=3)
    results = await asyncio.gather(batcher.submit([narrow]), batcher.submit([wide]))
    assert predict.calls == [2, 2]
    np.testing.assert_array_equal(results[0][0], narrow * 10)
    np.testing.assert_array_equal(results[1][0], wide * 10)


async def test_without_batching_predict_runs_at_once_with_no_queue() -> None:
    predict = Recorder()
    batcher = Batcher(predict, max_batch_size=1)
    coroutine = batcher.submit([rows(0, 2)])
    with pytest.raises(StopIteration) as done:
        coroutine.send(None)  # finishes without ever suspending: no future, no timer
    times_ten, _ = done.value.value
    assert times_ten.tolist() == [[0.0, 10.0], [20.0, 30.0]]
    assert predict.threads == [threading.current_thread()]


@pytest.mark.parametrize("max_batch", [1, 4])
async def test_a_slow_predict_moves_off_the_event_loop(max_batch: int) -> None:
    predict = Recorder()
    batcher = Batcher(predict, max_batch_size=max_batch, max_latency_ms=1)
    loop_thread = threading.current_thread()
    await batcher.submit([rows(0, 1)])
    assert predict.threads[-1] is loop_thread  # fast so far: inline
    batcher.estimate_s = 10 * INLINE_MAX_S  # as if the last predicts had been slow
    times_ten, _ = await batcher.submit([rows(1, 1)])
    assert predict.threads[-1] is not loop_thread
    assert times_ten.tolist() == [[10.0, 20.0]]
    assert batcher.estimate_s < 10 * INLINE_MAX_S  # the fast thread predict pulled it down
    batcher.close()


async def test_a_caller_that_goes_away_does_not_break_the_batch() -> None:
    predict = Recorder()
    batcher = Batcher(predict, max_batch_size=3, max_latency_ms=10_000)
    leaving = asyncio.create_task(batcher.submit([rows(0, 1)]))
    await asyncio.sleep(0)
    leaving.cancel()
    results = await asyncio.gather(batcher.submit([rows(1, 1)]), batcher.submit([rows(2, 1)]))
    assert [r[0].tolist() for r in results] == [[[10.0, 20.0]], [[20.0, 30.0]]]
    assert predict.calls == [3]


async def test_close_fails_what_is_still_queued() -> None:
    batcher = Batcher(Recorder(), max_batch_size=4, max_latency_ms=10_000)
    waiting = asyncio.create_task(batcher.submit([rows(0, 1)]))
    await asyncio.sleep(0)
    batcher.close()
    with pytest.raises(RuntimeError, match="shutting down"):
        await waiting


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        pytest.param({"max_batch_size": 0}, "max_batch_size", id="zero-batch"),
        pytest.param({"max_latency_ms": -1}, "max_latency_ms", id="negative-latency"),
    ],
)
def test_bad_settings_are_refused(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Batcher(Recorder(), **kw)
