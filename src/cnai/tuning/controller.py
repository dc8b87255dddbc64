"""The Experiment controller: Optuna's ask-and-tell over Trials that run as TrainJobs.

One reconcile of an Experiment:

1. read the Experiment, its Trials and their TrainJobs;
2. bring each running Trial up to date: create its TrainJob (the template with
   ``${trial.params.NAME}`` substituted) if it has none; read its objective's history
   from the tracking store (pushed by the trial's code through the SDK: no sidecar, no
   log scraping); end it as Succeeded (with the last value of each objective metric),
   Failed (its TrainJob failed, or never logged the metric), or Pruned (the pruner says
   so: its TrainJob is deleted at once, which frees its quota);
3. decide the Experiment: Succeeded when a trial reached the target or every trial of
   the budget ended; Failed past ``maxFailedTrials``; otherwise ask Optuna for new
   points up to ``parallelTrials`` running and ``maxTrials`` in all, each stored as a
   Trial named ``<experiment>-<number>`` before anything runs it.

Optuna's work (a GP fit, a CMA-ES replay) runs on a worker thread, so the API and
the other controllers never wait on it. The controller keeps no Optuna state: the
study is rebuilt from the stored Trials on every reconcile (:mod:`cnai.tuning.search`),
so after a platform restart the search goes on with no trial lost or duplicated (a
Trial's name is its number, so a retried create is refused, never doubled; the sampler
is seeded by the number of trials, so a point asked for again after a crash is the
same point).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cnai.core.clock import Clock
from cnai.core.controllers.informer import Informer
from cnai.core.controllers.types import ControllerContext, ControllerSpec, Request, Result
from cnai.core.errors import AlreadyExists, NotFound
from cnai.core.events import EventRecorder
from cnai.core.kinds import EventType
from cnai.core.meta import Condition, ObjectMeta, controller_ref
from cnai.core.resources import ResourceService
from cnai.core.store.protocol import Obj
from cnai.tracking.store import TrackingStore
from cnai.tracking.workloads import TRACKING_STORE
from cnai.training.api import TrainJob, TrainJobPhase
from cnai.tuning.api import (
    EXPERIMENT_LABEL,
    TRIAL_LABEL,
    Experiment,
    ExperimentPhase,
    ExperimentStatus,
    Trial,
    TrialPhase,
    TrialSpec,
    TrialStatus,
)

log = logging.getLogger("cnai.tuning")

EXPERIMENTS = "experiments"
TRIALS = "trials"
TRAINJOBS = "trainjobs"
COMPONENT = "experiment-controller"
# How often running trials' metrics are read for early stopping.
POLL_S = 1.0
MAX_PARSED = 100_000  # trial versions kept parsed
# How long a reconcile waits for the Trial cache to show the controller's own last
# write before it reads the store instead.
CACHE_WAIT_S = 2.0

# (namespace, run id, metric) -> [(step, value)], in step order.
MetricReader = Callable[[str, str, str], Awaitable[list[tuple[int, float]]]]


def store_reader(store: TrackingStore) -> MetricReader:
    """Metric histories from the tracking store (the last value logged at each step)."""

    async def read(namespace: str, run_id: str, key: str) -> list[tuple[int, float]]:
        try:
            points = await store.history(namespace, run_id, key)
        except NotFound:
            return []
        last: dict[int, float] = {}
        for step, value in zip(points.steps.tolist(), points.values.tolist(), strict=True):
            last[int(step)] = float(value)
        return sorted(last.items())

    return read


def trial_name(experiment: str, number: int) -> str:
    suffix = f"-{number}"
    return experiment[: 63 - len(suffix)].rstrip("-") + suffix


class ExperimentReconciler:
    """Reconciles one Experiment at a time against the store."""

    def __init__(
        self,
        service: ResourceService,
        clock: Clock,
        recorder: EventRecorder,
        metrics: MetricReader | None = None,
        trial_cache: Informer | None = None,
    ) -> None:
        self.service = service
        self.clock = clock
        self.recorder = recorder
        self.metrics = metrics
        # Trials are read from the shared cache (an experiment of a thousand trials is
        # read on every reconcile), once it shows this controller's own last write.
        self.trial_cache = trial_cache
        self._written = ""  # resourceVersion of the last Trial this controller wrote
        # (namespace, run id) -> experiment, for running trials that an early-stopping
        # experiment judges: a metric logged to such a run wakes the experiment at once.
        self._followed: dict[tuple[str, str], str] = {}
        self._parsed: dict[tuple[str, str], Trial] = {}
        # (experiment uid, ended trials) -> its best trial and Pareto front
        self._best: dict[str, tuple[int, Any, Any]] = {}

    async def reconcile(self, request: Request) -> Result:

        try:
            raw = await self.service.get(EXPERIMENTS, request.namespace, request.name)
        except NotFound:
            self._unfollow(request)
            return Result()
        exp = Experiment.model_validate(raw)
        if exp.metadata.deletion_timestamp is not None:
            self._unfollow(request)
            return Result()
        ns = exp.metadata.namespace or "default"
        trials = await self._trials(exp)
        now = self.clock.now().replace(microsecond=0)
        status = exp.status.model_copy(deep=True)
        if status.start_time is None:
            status.start_time = now
        notes: list[tuple[EventType, str, str]] = []
        # 2. Each running trial: its TrainJob, its metrics, its end.
        for i, trial in enumerate(trials):
            if trial.status.phase.terminal:
                continue
            job = await self._job(trial)
            updated = await self._follow(exp, trial, job, trials, now)
            self._follow_run(exp, updated)
            if updated.status != trial.status:
                trials[i] = await self._write_trial(updated)
                if updated.status.phase.terminal:
                    notes.append(self._trial_note(updated))
                    if job is not None and not exp.spec.retain_trial_jobs:
                        await self._delete_job(job)  # its pods, Workload and token go too
        # 3. The experiment.
        if not status.phase.terminal:
            ended = self._decide_end(exp, trials, status, now)
            if ended:
                notes.append((EventType.NORMAL if ended[0] else EventType.WARNING, *ended[1:]))
                for i, trial in enumerate(trials):
                    if not trial.status.phase.terminal:
                        trials[i] = await self._stop(trial, "ExperimentEnded", status.message, now)
                        self._follow_run(exp, trials[i])
            else:
                trials += await self._more(exp, trials, now)
        best, front = await self._best_of(exp, trials)
        self._count(exp, trials, status, best, front)
        if status != exp.status:
            body = exp.model_copy(update={"status": status}).to_dict()
            await self.service.update(EXPERIMENTS, body, ns, exp.metadata.name, status=True)
        for kind, reason, message in notes:
            await self.recorder.record(exp, kind, reason, message)
        running = any(not t.status.phase.terminal for t in trials)
        return Result(requeue_after=POLL_S if running and not status.phase.terminal else None)

    def metrics_logged(
        self, enqueue: Callable[[Request], None]
    ) -> Callable[[str, str, frozenset[str]], None]:
        """A tracking-store listener that enqueues the experiment of a followed run."""

        def listener(namespace: str, run_id: str, keys: frozenset[str]) -> None:
            experiment = self._followed.get((namespace, run_id))
            if experiment is not None:
                enqueue(Request(namespace, experiment))

        return listener

    def _unfollow(self, request: Request) -> None:
        for key, experiment in list(self._followed.items()):
            if key[0] == (request.namespace or "") and experiment == request.name:
                del self._followed[key]

    def _follow_run(self, exp: Experiment, trial: Trial) -> None:
        """Keep ``_followed`` to the running trials of early-stopping experiments."""
        key = (trial.metadata.namespace or "", trial.status.run_id)
        if not trial.status.run_id:
            return
        if trial.status.phase.terminal or exp.spec.early_stopping is None:
            self._followed.pop(key, None)
        else:
            self._followed[key] = exp.metadata.name

    async def _best_of(self, exp: Experiment, trials: list[Trial]) -> tuple[Any, Any]:
        """The best trial and Pareto front, computed again only when a trial ended."""
        from cnai.tuning import search

        uid = exp.metadata.uid or ""
        ended = sum(t.status.phase.terminal for t in trials)
        cached = self._best.get(uid)
        if cached is not None and cached[0] == ended:
            return cached[1], cached[2]
        best, front = await asyncio.to_thread(search.best, exp.spec, trials)
        self._best[uid] = (ended, best, front)
        return best, front

    # -- reading ---------------------------------------------------------------------

    def _typed(self, obj: Obj) -> Trial:
        """The Trial of ``obj``, parsed once per version (an experiment of a thousand
        trials is read on every reconcile; ended trials never change)."""
        meta = obj["metadata"]
        key = (meta.get("uid", ""), meta.get("resourceVersion", ""))
        found = self._parsed.get(key)
        if found is None:
            found = self._parsed[key] = Trial.model_validate(obj)
            if len(self._parsed) > MAX_PARSED:
                self._parsed.pop(next(iter(self._parsed)))
        return found

    async def _trials(self, exp: Experiment) -> list[Trial]:
        selector = f"{EXPERIMENT_LABEL}={exp.metadata.name}"
        cache = self.trial_cache
        if (
            cache is not None
            and cache.has_synced
            and (not self._written or await cache.caught_up(self._written, CACHE_WAIT_S))
        ):
            objs = cache.list(exp.metadata.namespace, selector, copy_objects=False)
        else:
            objs = (await self.service.list(TRIALS, exp.metadata.namespace, selector)).items
        trials = [self._typed(o) for o in objs]
        mine = [
            t for t in trials if any(r.uid == exp.metadata.uid for r in t.metadata.owner_references)
        ]
        return sorted(mine, key=lambda t: t.spec.number)

    async def _job(self, trial: Trial) -> TrainJob | None:
        """The trial's TrainJob (same name), if there is one."""
        try:
            raw = await self.service.get(TRAINJOBS, trial.metadata.namespace, trial.metadata.name)
        except NotFound:
            return None
        return TrainJob.model_validate(raw)

    # -- one trial -------------------------------------------------------------------

    async def _follow(
        self,
        exp: Experiment,
        trial: Trial,
        job: TrainJob | None,
        trials: list[Trial],
        now: Any,
    ) -> Trial:
        """The trial brought up to date with its TrainJob and metrics."""
        from cnai.tuning import search

        status = trial.status.model_copy(deep=True)
        status.start_time = status.start_time or trial.metadata.creation_timestamp or now
        if job is None or not _owned(job, trial):
            if status.train_job:  # it had one: deleted behind our back
                return _ended(trial, status, TrialPhase.FAILED, "TrainJobDeleted",
                              f"its TrainJob {status.train_job} was deleted", now)  # fmt: skip
            job = await self._create_job(exp, trial)
            if job is None:
                return trial
        status.train_job = job.metadata.name
        status.run_id = job.status.run_id or status.run_id
        metrics = exp.spec.objective.metrics
        primary = metrics[0].metric
        if status.run_id and self.metrics is not None:
            history = await self.metrics(trial.metadata.namespace or "", status.run_id, primary)
            status.intermediate = {str(step): value for step, value in history}
        if job.status.phase is TrainJobPhase.FAILED:
            message = f"its TrainJob {job.metadata.name} failed: {job.status.message}"
            return _ended(trial, status, TrialPhase.FAILED, "TrainJobFailed", message, now)
        if job.status.phase is TrainJobPhase.SUCCEEDED:
            values = []
            for m in metrics:
                history = (
                    await self.metrics(trial.metadata.namespace or "", status.run_id, m.metric)
                    if status.run_id and self.metrics is not None
                    else []
                )
                if not history:
                    message = f"its TrainJob succeeded but never logged the metric {m.metric!r}"
                    return _ended(trial, status, TrialPhase.FAILED, "MetricMissing", message, now)
                values.append(history[-1][1])
            status.values = values
            return _ended(trial, status, TrialPhase.SUCCEEDED, "Completed", "", now)
        candidate = trial.model_copy(update={"status": status})
        others = [candidate if t.metadata.name == trial.metadata.name else t for t in trials]
        # The history stored at the last poll was judged then: only newer steps are.
        judged = _last_step(trial.status.intermediate)
        prune = _last_step(status.intermediate) not in (None, judged) and await asyncio.to_thread(
            search.should_prune, exp.spec, others, candidate, judged
        )
        if prune:
            step = max(int(s) for s in status.intermediate)
            value = status.intermediate[str(step)]
            message = f"{primary} {value:g} at step {step} is not promising"
            pruned = _ended(trial, status, TrialPhase.PRUNED, "Pruned", message, now)
            await self._delete_job(job)
            return pruned
        return candidate

    async def _create_job(self, exp: Experiment, trial: Trial) -> TrainJob | None:
        from cnai.tuning import search

        template = exp.spec.trial_template.model_dump(mode="json", exclude_none=True)
        spec = search.substitute(template, trial.spec.params)
        spec["runGroup"] = spec.get("runGroup") or exp.metadata.name
        body: Obj = {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "TrainJob",
            "metadata": {
                "name": trial.metadata.name,
                "namespace": trial.metadata.namespace,
                "labels": {
                    EXPERIMENT_LABEL: exp.metadata.name,
                    TRIAL_LABEL: trial.metadata.name,
                },
                "ownerReferences": [controller_ref(trial).model_dump(mode="json")],
            },
            "spec": spec,
        }
        try:
            created = await self.service.create(TRAINJOBS, body, trial.metadata.namespace)
        except AlreadyExists:
            return None  # another's, or ours not yet listed: looked at again shortly
        return TrainJob.model_validate(created)

    async def _delete_job(self, job: TrainJob) -> None:
        with contextlib.suppress(NotFound):
            await self.service.delete(TRAINJOBS, job.metadata.namespace, job.metadata.name)

    async def _stop(self, trial: Trial, reason: str, message: str, now: Any) -> Trial:
        """End a running trial because the experiment ended (its job deleted)."""
        if trial.status.train_job:
            with contextlib.suppress(NotFound):
                await self.service.delete(
                    TRAINJOBS, trial.metadata.namespace, trial.status.train_job
                )
        status = trial.status.model_copy(deep=True)
        stopped = _ended(trial, status, TrialPhase.PRUNED, reason, message, now)
        return await self._write_trial(stopped)

    async def _write_trial(self, trial: Trial) -> Trial:
        written = await self.service.update(
            TRIALS, trial.to_dict(), trial.metadata.namespace, trial.metadata.name, status=True
        )
        return self._wrote(written)

    def _wrote(self, obj: Obj) -> Trial:
        """Note a Trial this controller wrote (the cache must show it before it is read)."""
        self._written = obj["metadata"].get("resourceVersion", "") or self._written
        return Trial.model_validate(obj)

    @staticmethod
    def _trial_note(trial: Trial) -> tuple[EventType, str, str]:
        phase = trial.status.phase
        if phase is TrialPhase.SUCCEEDED:
            values = ", ".join(f"{v:g}" for v in trial.status.values)
            return EventType.NORMAL, "TrialSucceeded", f"{trial.metadata.name}: {values}"
        kind = EventType.NORMAL if phase is TrialPhase.PRUNED else EventType.WARNING
        return kind, f"Trial{phase.value}", f"{trial.metadata.name}: {trial.status.message}"

    # -- the experiment --------------------------------------------------------------

    def _decide_end(
        self, exp: Experiment, trials: list[Trial], status: ExperimentStatus, now: Any
    ) -> tuple[bool, str, str] | None:
        """(succeeded, reason, message) if the experiment ends now, with its status set."""
        from cnai.tuning import search

        spec = exp.spec
        failed = sum(t.status.phase is TrialPhase.FAILED for t in trials)
        ended: tuple[bool, str, str] | None = None
        reached = next(
            (
                t
                for t in trials
                if t.status.phase is TrialPhase.SUCCEEDED
                and search.reached_target(spec, t.status.values)
            ),
            None,
        )
        if reached is not None:
            message = (
                f"trial {reached.metadata.name} reached the target "
                f"{spec.objective.metric} {spec.objective.target:g}"
            )
            ended = (True, "GoalReached", message)
        elif failed > spec.max_failed_trials:
            message = (
                f"{failed} trials failed, more than maxFailedTrials ({spec.max_failed_trials})"
            )
            last = max((t for t in trials if t.status.phase is TrialPhase.FAILED),
                       key=lambda t: t.spec.number)  # fmt: skip
            message += f"; the last: {last.metadata.name}: {last.status.message}"
            ended = (False, "MaxFailedTrialsReached", message)
        elif all(t.status.phase.terminal for t in trials) and (
            len(trials) >= spec.max_trials or _exhausted(exp, trials)
        ):
            ended = (True, "MaxTrialsReached", f"all {len(trials)} trials ended")
        if ended is None:
            return None
        ok, reason, message = ended
        status.phase = ExperimentPhase.SUCCEEDED if ok else ExperimentPhase.FAILED
        status.reason, status.message = reason, message
        status.completion_time = now
        status.conditions = [
            c for c in status.conditions if c.type not in ("Succeeded", "Failed")
        ] + [
            Condition(
                type="Succeeded" if ok else "Failed",
                status="True",
                reason=reason,
                message=message,
                last_transition_time=now,
            )
        ]
        return ended

    async def _more(self, exp: Experiment, trials: list[Trial], now: Any) -> list[Trial]:
        """New trials, up to parallelTrials running and maxTrials in all."""
        from cnai.tuning import search

        spec = exp.spec
        running = sum(not t.status.phase.terminal for t in trials)
        made: list[Trial] = []
        while (
            running + len(made) < spec.parallel_trials and len(trials) + len(made) < spec.max_trials
        ):
            known = trials + made
            try:
                params = await asyncio.to_thread(search.suggest, spec, known)
            except search.SearchExhausted:
                break
            number = len(known)
            trial = Trial(
                metadata=ObjectMeta(
                    name=trial_name(exp.metadata.name, number),
                    namespace=exp.metadata.namespace,
                    labels={EXPERIMENT_LABEL: exp.metadata.name},
                    owner_references=[controller_ref(exp)],
                ),
                spec=TrialSpec(experiment=exp.metadata.name, number=number, params=params),
                status=TrialStatus(start_time=now),
            )
            try:
                created = await self.service.create(TRIALS, trial.to_dict(), exp.metadata.namespace)
            except AlreadyExists:
                break  # made before a crash, not listed yet: the next reconcile sees it
            made.append(self._wrote(created))
            await self.recorder.record(
                exp, EventType.NORMAL, "TrialCreated", f"{trial.metadata.name}: {params}"
            )
            await self._create_job(exp, made[-1])  # at once, not on the next reconcile
        return made

    @staticmethod
    def _count(
        exp: Experiment, trials: list[Trial], status: ExperimentStatus, best: Any, front: Any
    ) -> None:
        phases = [t.status.phase for t in trials]
        status.trials = len(trials)
        status.running = phases.count(TrialPhase.RUNNING)
        status.succeeded = phases.count(TrialPhase.SUCCEEDED)
        status.pruned = phases.count(TrialPhase.PRUNED)
        status.failed = phases.count(TrialPhase.FAILED)
        status.progress = f"{len(trials) - status.running}/{exp.spec.max_trials}"
        status.best_trial = best
        status.pareto_front = front if len(exp.spec.objective.metrics) > 1 else []


def _last_step(intermediate: dict[str, float]) -> int | None:
    steps = [int(k) for k in intermediate if k.lstrip("-").isdigit()]
    return max(steps) if steps else None


def _owned(job: TrainJob, trial: Trial) -> bool:
    return any(r.uid == trial.metadata.uid for r in job.metadata.owner_references)


def _ended(
    trial: Trial, status: TrialStatus, phase: TrialPhase, reason: str, message: str, now: Any
) -> Trial:
    status.phase, status.reason, status.message = phase, reason, message
    status.completion_time = now
    return trial.model_copy(update={"status": status})


def _exhausted(exp: Experiment, trials: list[Trial]) -> bool:
    """True if the algorithm has no new point to offer (a finished grid)."""
    from cnai.tuning import search

    return search.exhausted(exp.spec, trials)


def _experiment_of(obj: Obj) -> list[Request]:
    meta = obj.get("metadata") or {}
    name = (meta.get("labels") or {}).get(EXPERIMENT_LABEL)
    return [Request(meta.get("namespace"), name)] if name else []


def experiment_controller(ctx: ControllerContext) -> ControllerSpec:
    """The ControllerFactory of the Experiment controller."""
    store = ctx.services.get(TRACKING_STORE)
    reader = store_reader(store) if isinstance(store, TrackingStore) else None
    cache = ctx.informer(TRIALS) if ctx.informer is not None else None
    reconciler = ExperimentReconciler(
        ctx.service, ctx.clock, ctx.recorder(COMPONENT), reader, trial_cache=cache
    )

    def metrics(enqueue: Callable[[Request], None]) -> None:
        if isinstance(store, TrackingStore):
            store.add_listener(reconciler.metrics_logged(enqueue))

    return ControllerSpec(
        name=COMPONENT,
        kind=EXPERIMENTS,
        reconciler=reconciler,
        owns=(TRIALS,),
        watches=((TRAINJOBS, _experiment_of),),
        sources=(metrics,),
    )
