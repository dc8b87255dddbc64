"""The controller manager: shared informers, one work queue per controller, and workers.

``add`` wires each controller's sources (its kind, the kinds it owns, other watches) to
its queue through informers shared by plural; ``start`` lists every kind into the cache
before any worker runs, so first reconciles see the whole world; ``stop`` stops taking
keys, lets in-flight reconciles finish up to a timeout, then cancels them and stops the
informers. A failing reconcile is logged and retried with per-key backoff; it never
stops another key, worker or controller.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import trace
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cnai.core import tracing
from cnai.core.clock import Clock
from cnai.core.controllers.backoff import Backoff, RateLimiter
from cnai.core.controllers.handlers import enqueue_handlers, enqueue_object, owner_mapper
from cnai.core.controllers.informer import Informer
from cnai.core.controllers.types import ControllerSpec, Request
from cnai.core.controllers.workqueue import WorkQueue
from cnai.core.metrics import LATENCY_BUCKETS
from cnai.core.registry import Registry
from cnai.core.store.protocol import Store

_TRACER = tracing.tracer("cnai.controllers")
log = logging.getLogger(__name__)


def _key_text(request: Request) -> str:
    return f"{request.namespace}/{request.name}" if request.namespace else request.name


@dataclass
class _Controller:
    spec: ControllerSpec
    queue: WorkQueue[Request]
    workers: list[asyncio.Task[None]] = field(default_factory=list)


class Manager:
    """Runs controllers against one store; see the module docstring for the lifecycle."""

    def __init__(
        self,
        store: Store,
        registry: Registry,
        clock: Clock,
        *,
        retry_base: float = 0.005,
        retry_cap: float = 60.0,
        relist_base: float = 0.05,
        relist_cap: float = 30.0,
        stop_timeout: float = 10.0,
        metrics: CollectorRegistry | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.clock = clock
        self.retry_base, self.retry_cap = retry_base, retry_cap
        self.relist_base, self.relist_cap = relist_base, relist_cap
        self.stop_timeout = stop_timeout
        self._controllers: dict[str, _Controller] = {}
        self._informers: dict[str, Informer] = {}
        self._informer_tasks: dict[str, asyncio.Task[None]] = {}
        self._started = False
        self._stopping = False
        self._stopped = asyncio.Event()
        self._metrics = _Metrics(metrics) if metrics is not None else None

    # -- building --------------------------------------------------------------------

    def informer(self, plural: str) -> Informer:
        """The shared informer for ``plural``; one asked for after start starts at once."""
        informer = self._informers.get(plural)
        if informer is None:
            backoff = Backoff(self.relist_base, self.relist_cap)
            informer = self._informers[plural] = Informer(self.store, plural, backoff=backoff)
            if self._started and not self._stopping:
                self._run_informer(plural, informer)
        return informer

    def add(self, spec: ControllerSpec) -> None:
        """Register a controller; all controllers are added before :meth:`start`."""
        if self._started:
            raise RuntimeError(f"controller {spec.name}: add controllers before start()")
        if spec.name in self._controllers:
            raise ValueError(f"controller {spec.name} is already added")
        if spec.workers < 1:
            raise ValueError(f"controller {spec.name}: workers must be at least 1")
        info = self.registry.by_plural(spec.kind)
        if info is None and spec.owns:
            raise ValueError(f"controller {spec.name}: kind {spec.kind!r} is not registered")
        limiter: RateLimiter[Request] = RateLimiter(self.retry_base, self.retry_cap)
        queue = WorkQueue(limiter, name=spec.name)
        self._controllers[spec.name] = _Controller(spec, queue)
        if self._metrics is not None:
            self._metrics.add(spec.name, queue)
        self.informer(spec.kind).add_handlers(enqueue_handlers(queue, enqueue_object))
        if info is not None:
            owners = owner_mapper(info.kind, info.namespaced)
            for plural in spec.owns:
                self.informer(plural).add_handlers(enqueue_handlers(queue, owners))
        for plural, mapper in spec.watches:
            self.informer(plural).add_handlers(enqueue_handlers(queue, mapper))
        for source in spec.sources:
            source(queue.add)

    def queue(self, name: str) -> WorkQueue[Request]:
        """The work queue of the controller called ``name``."""
        return self._controllers[name].queue

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start informers, wait until each has listed once, then start the workers."""
        if self._started:
            raise RuntimeError("the controller manager is already started")
        self._started = True
        # 1. Informers first: their initial lists fill the queues with every object.
        for plural, informer in list(self._informers.items()):
            self._run_informer(plural, informer)
        # 2. No reconcile before every cache is full, or it would act on a partial world.
        if not await self._wait_synced():
            return  # stop() was called meanwhile
        # 3. Workers.
        for ctrl in self._controllers.values():
            for i in range(ctrl.spec.workers):
                task = asyncio.create_task(self._work(ctrl), name=f"{ctrl.spec.name}-{i}")
                ctrl.workers.append(task)

    async def stop(self, timeout: float | None = None) -> None:
        """Stop gracefully: finish in-flight reconciles (up to ``timeout`` s), then cancel."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        timeout = self.stop_timeout if timeout is None else timeout
        try:
            # 1. Stop taking keys: idle workers get None and return.
            for ctrl in self._controllers.values():
                ctrl.queue.shutdown()
            # 2. Let in-flight reconciles finish, then cancel what is left.
            workers = [t for c in self._controllers.values() for t in c.workers]
            if workers:
                _, pending = await asyncio.wait(workers, timeout=timeout)
                for task in pending:
                    log.warning(
                        "controller worker %s did not finish in time; cancelling", task.get_name()
                    )
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
            # 3. Informers last: finishing reconciles may still read their caches.
            for informer in self._informers.values():
                informer.stop()
            await asyncio.gather(*self._informer_tasks.values(), return_exceptions=True)
        finally:
            self._stopped.set()

    async def run(self) -> None:
        """Start, then run until :meth:`stop` is called or this task is cancelled."""
        try:
            await self.start()
            await self._stopped.wait()
        finally:
            if not self._stopped.is_set():
                await self.stop()

    async def _wait_synced(self) -> bool:
        """Wait for every informer's first list, or for stop(); True if all synced."""

        async def all_synced() -> None:
            for informer in list(self._informers.values()):
                await informer.wait_synced()

        synced = asyncio.create_task(all_synced())
        stopped = asyncio.create_task(self._stopped.wait())
        waiters: list[asyncio.Task[Any]] = [synced, stopped]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        return synced.done() and not synced.cancelled() and not self._stopping

    def _run_informer(self, plural: str, informer: Informer) -> None:
        self._informer_tasks[plural] = asyncio.create_task(
            informer.run(), name=f"informer:{plural}"
        )

    # -- workers ---------------------------------------------------------------------

    async def _work(self, ctrl: _Controller) -> None:
        """One worker: take a key, reconcile it, until the queue shuts down."""
        while (request := await ctrl.queue.get()) is not None:
            try:
                await self._reconcile(ctrl, request)
            finally:
                ctrl.queue.done(request)

    async def _reconcile(self, ctrl: _Controller, request: Request) -> None:
        if not tracing.enabled():
            await self._reconcile_once(ctrl, request, None)
            return
        attributes = {"cnai.controller": ctrl.spec.name, "cnai.name": request.name}
        if request.namespace is not None:
            attributes["cnai.namespace"] = request.namespace
        with _TRACER.start_as_current_span(
            f"reconcile {ctrl.spec.name}",
            attributes=attributes,
            record_exception=False,  # its message may quote the object: a Secret's data
            set_status_on_exception=False,
        ) as span:
            await self._reconcile_once(ctrl, request, span)

    async def _reconcile_once(
        self, ctrl: _Controller, request: Request, span: trace.Span | None
    ) -> None:
        name, queue = ctrl.spec.name, ctrl.queue
        started = self.clock.monotonic()
        try:
            result = await ctrl.spec.reconciler.reconcile(request)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if span is not None:
                span.set_attribute("cnai.result", "error")
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
            if self._metrics is not None:
                self._metrics.done(name, "error", self.clock.monotonic() - started)
            # Name the controller and key only: the object may be a Secret.
            if self._stopping:
                # The store is likely closing under us; the next start lists again.
                log.warning(
                    "controller %s: reconcile %s failed during shutdown: %s",
                    name,
                    _key_text(request),
                    type(exc).__name__,
                )
                return
            log.error(
                "controller %s: reconcile %s failed (retry %d)",
                name,
                _key_text(request),
                queue.num_requeues(request) + 1,
                exc_info=True,
            )
            queue.add_rate_limited(request)
            return
        queue.forget(request)
        requeue = result is not None and result.requeue_after is not None
        outcome = "requeue_after" if requeue else "success"
        if span is not None:
            span.set_attribute("cnai.result", outcome)
        if self._metrics is not None:
            self._metrics.done(name, outcome, self.clock.monotonic() - started)
        log.debug(
            "controller %s: reconciled %s in %.3fs",
            name,
            _key_text(request),
            self.clock.monotonic() - started,
        )
        if result is not None and result.requeue_after is not None:
            queue.add_after(request, result.requeue_after)


class _Metrics:
    """Per controller: reconciles by outcome, their latency, and the work queue's depth
    (the names of controller-runtime's, with the ``cnai_`` prefix)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.reconciles = Counter(
            "cnai_controller_reconcile_total",
            "Reconciles by controller and outcome (success, requeue_after, error).",
            ["controller", "result"],
            registry=registry,
        )
        self.seconds = Histogram(
            "cnai_controller_reconcile_duration_seconds",
            "Time one reconcile took, by controller.",
            ["controller"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.depth = Gauge(
            "cnai_controller_workqueue_depth",
            "Keys waiting in the controller's work queue.",
            ["controller"],
            registry=registry,
        )

    def add(self, name: str, queue: WorkQueue[Request]) -> None:
        for result in ("success", "requeue_after", "error"):
            self.reconciles.labels(name, result)  # every series from the start, at 0
        self.depth.labels(name).set_function(lambda: len(queue))

    def done(self, name: str, result: str, seconds: float) -> None:
        self.reconciles.labels(name, result).inc()
        self.seconds.labels(name).observe(seconds)
