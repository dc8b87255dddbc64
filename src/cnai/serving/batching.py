"""Adaptive batching: concurrent requests to one model merged into one predict call.

A request waits in the queue until ``max_batch_size`` rows have gathered or
``max_latency_ms`` has passed since the first queued request, whichever comes first
(MLServer's adaptive batching, KServe's batcher). The batch's inputs are stacked along
the first dimension, the model predicts once, and each caller gets exactly its own rows
of every output back; if predict fails, every caller of that batch gets the error. A
request is never split: one that would overflow the current batch flushes it first, and
one of ``max_batch_size`` rows or more runs alone. Requests whose inputs cannot be
stacked with the others (different trailing shapes or dtypes, allowed where a model's
signature leaves dimensions free) are predicted in separate groups of the same flush,
so one client's odd shape never fails another's request.

With ``max_batch_size`` 1 (batching off) there is no queue: ``submit`` calls predict at
once, with no future and no timer.

Inline or in a thread: predict runs on the event loop while its recent duration (an
exponential moving average) stays under ``INLINE_MAX_S``, and in a one-thread executor
above it. Measured on the development machine (uvloop, with a CPU-heavy job running
beside): a scikit-learn LogisticRegression predict of one iris row took 148 us inline
and 268 us through ``run_in_executor`` with the process pinned to one core (the hop
alone, a no-op function, 42 us), and 190 us against 540 us on two cores (hop 200 us).
So a small predict costs about what the hop that would move it off the loop costs, and
runs inline. At 1 ms the hop is a few per cent of the predict, and it buys something: a
long predict (a large batch, a deep network) runs in the thread while the loop goes on
reading and queueing requests, which become the next batch, and answering health
probes, since ONNX Runtime, torch and numpy release the GIL. One thread, because the
server is sized for one core: a second concurrent predict would only share that core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnai.serving.codec import Array

# A predict expected to take longer than this runs in a thread (see the docstring).
INLINE_MAX_S = 0.001
_EWMA_WEIGHT = 0.2  # of the newest duration

Predict = Callable[[list[Array]], list[Array]]


class BatchError(RuntimeError):
    """The model's outputs cannot be split back into the batch's requests."""


@dataclass
class _Pending:
    inputs: list[Array]
    rows: int
    future: asyncio.Future[list[Array]]


class Batcher:
    """Runs ``predict`` for requests submitted on one event loop; ``on_batch`` is told
    the rows of each predict call (for the batch-size histogram)."""

    def __init__(
        self,
        predict: Predict,
        *,
        max_batch_size: int = 1,
        max_latency_ms: float = 5.0,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        if max_batch_size < 1 or max_latency_ms < 0:
            raise ValueError("max_batch_size must be >= 1 and max_latency_ms >= 0")
        self.predict = predict
        self.max_batch_size = max_batch_size
        self.max_latency_s = max_latency_ms / 1000.0
        self.on_batch = on_batch or (lambda rows: None)
        self.estimate_s = 0.0  # moving average of predict's duration
        self._executor: ThreadPoolExecutor | None = None
        self._queue: list[_Pending] = []
        self._queued_rows = 0
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def queued(self) -> int:
        """Requests waiting for their batch to start."""
        return len(self._queue)

    async def submit(self, inputs: list[Array]) -> list[Array]:
        """Predict ``inputs`` (one array per model input, rows first), alone or batched
        with concurrent requests, and return this request's outputs."""
        rows = _rows(inputs)
        if self.max_batch_size == 1 or rows is None or rows >= self.max_batch_size:
            return await self._alone(inputs, 1 if rows is None else rows)
        if self._queued_rows + rows > self.max_batch_size:
            self._flush()
        future: asyncio.Future[list[Array]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(inputs, rows, future))
        self._queued_rows += rows
        if self._queued_rows >= self.max_batch_size:
            self._flush()
        elif len(self._queue) == 1:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_later(self.max_latency_s, self._flush)
        return await future

    def close(self) -> None:
        """Fail what is still queued and stop the thread (at server shutdown)."""
        if self._timer is not None:
            self._timer.cancel()
        for item in self._queue:
            if not item.future.done():
                item.future.set_exception(RuntimeError("the server is shutting down"))
        self._queue.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- running predict -------------------------------------------------------------

    async def _alone(self, inputs: list[Array], rows: int) -> list[Array]:
        self.on_batch(rows)
        if self.estimate_s < INLINE_MAX_S:
            return self._timed(inputs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread(), self._timed, inputs)

    def _timed(self, inputs: list[Array]) -> list[Array]:
        started = time.perf_counter()
        try:
            return self.predict(inputs)
        finally:
            elapsed = time.perf_counter() - started
            self.estimate_s += _EWMA_WEIGHT * (elapsed - self.estimate_s)

    def _thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="cnai-predict")
        return self._executor

    def _flush(self) -> None:
        """Start predicting everything queued (the timer's callback, or a full batch)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._queue, self._queued_rows = self._queue, [], 0
        for group in _stackable_groups(batch):
            if self.estimate_s < INLINE_MAX_S:
                _deliver(group, self._run_group, None)
            else:
                task = asyncio.get_running_loop().create_task(self._group_in_thread(group))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _run_group(self, group: list[_Pending]) -> list[Array]:
        """Predict a group's stacked rows (in whichever thread calls it)."""
        self.on_batch(sum(item.rows for item in group))
        if len(group) == 1:
            return self._timed(group[0].inputs)
        stacked = [
            np.concatenate([item.inputs[k] for item in group]) for k in range(len(group[0].inputs))
        ]
        return self._timed(stacked)

    async def _group_in_thread(self, group: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        try:
            outputs = await loop.run_in_executor(self._thread(), self._run_group, group)
        except Exception as exc:
            _deliver(group, None, exc)
            return
        _deliver(group, lambda _: outputs, None)


def _deliver(
    group: list[_Pending],
    run: Callable[[list[_Pending]], list[Array]] | None,
    error: BaseException | None,
) -> None:
    """Give each caller its rows of ``run(group)``'s outputs, or everyone the error."""
    results: list[list[Array]] = []
    if run is not None:
        try:
            outputs = run(group)
            results = _split(outputs, group)
        except Exception as exc:
            error = exc
    for i, item in enumerate(group):
        if item.future.done():  # the caller went away
            continue
        if error is not None:
            item.future.set_exception(error)
        else:
            item.future.set_result(results[i])


def _split(outputs: list[Array], group: list[_Pending]) -> list[list[Array]]:
    if len(group) == 1:
        return [outputs]  # nothing to split: any output shape is fine
    total = sum(item.rows for item in group)
    for k, out in enumerate(outputs):
        if out.ndim == 0 or out.shape[0] != total:
            got = "a scalar" if out.ndim == 0 else f"{out.shape[0]} rows"
            raise BatchError(f"model output {k} has {got} for a batch of {total} rows")
    results: list[list[Array]] = []
    start = 0
    for item in group:
        stop = start + item.rows
        results.append([out[start:stop] for out in outputs])
        start = stop
    return results


def _rows(inputs: list[Array]) -> int | None:
    """The rows (first dimension) the inputs share; None where they cannot be batched."""
    if not inputs or any(array.ndim == 0 for array in inputs):
        return None
    rows = inputs[0].shape[0]
    return rows if all(array.shape[0] == rows for array in inputs) else None


def _stackable_groups(batch: list[_Pending]) -> list[list[_Pending]]:
    """The batch split into groups whose inputs concatenate: same count, trailing
    shapes and dtypes. Almost always one group."""
    groups: dict[Any, list[_Pending]] = {}
    for item in batch:
        key = tuple((array.shape[1:], array.dtype.str) for array in item.inputs)
        groups.setdefault(key, []).append(item)
    return list(groups.values())
