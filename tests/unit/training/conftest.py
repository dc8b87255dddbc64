"""Fixtures for TrainJob tests: a real SQLite store, the kernel, scheduling and TrainJob
kinds, a fake clock, and one 8-cpu Node with the default queues sized from it.

There is no runtime here: :class:`TrainWorld` plays the kubelet's part, moving pods
between phases (with exit codes) by writing their status and finishing their deletion by
dropping their finalizers, and steps the TrainJob reconciler and the real scheduler tick
by tick. :class:`TrainJobBuilder` builds TrainJobs as a client would send them.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Self

import pytest

import cnai.training
from cnai.core.clock import FakeClock
from cnai.core.controllers.types import Request, Result
from cnai.core.errors import NotFound
from cnai.core.events import EventRecorder
from cnai.core.kernel import register_kernel
from cnai.core.kinds import Namespace
from cnai.core.pods import PodPhase
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.store.sqlite import SQLiteStore
from cnai.scheduling import register_kinds
from cnai.scheduling.controller import SchedulerReconciler
from cnai.training.api import TRAINJOB_NAME_LABEL, TrainJob
from cnai.training.controller import TrainJobReconciler, workload_name
from cnai.version import GROUP_VERSION

PROGRAM = ["python", "train.py"]


class TrainJobBuilder:
    """Builds a TrainJob as wire data (camelCase keys):
    ``make_trainjob("j").nodes(2).cpu("4").on_exit("FailJob", 42)``."""

    def __init__(self, name: str, namespace: str = "default") -> None:
        self._obj: dict[str, Any] = {
            "apiVersion": GROUP_VERSION,
            "kind": "TrainJob",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"trainer": {"command": list(PROGRAM)}},
        }

    @property
    def _spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self._obj["spec"]
        return spec

    def trainer(self, **fields: Any) -> Self:
        """Set fields of the trainer (wire names)."""
        self._spec["trainer"].update(fields)
        return self

    def spec(self, **fields: Any) -> Self:
        self._spec.update(fields)
        return self

    def nodes(self, n: int) -> Self:
        return self.trainer(numNodes=n)

    def elastic(self, least: int, most: int) -> Self:
        return self.trainer(minNodes=least, maxNodes=most)

    def procs(self, n: int) -> Self:
        return self.trainer(numProcPerNode=n)

    def cpu(self, amount: str) -> Self:
        return self.trainer(resourcesPerNode={"requests": {"cpu": amount}})

    def env(self, **values: str) -> Self:
        return self.trainer(env=[{"name": k, "value": v} for k, v in values.items()])

    def queue(self, name: str) -> Self:
        return self.spec(queue=name)

    def priority(self, name: str) -> Self:
        return self.spec(priorityClassName=name)

    def backoff_limit(self, n: int) -> Self:
        return self.spec(backoffLimit=n)

    def deadline(self, seconds: int) -> Self:
        return self.spec(activeDeadlineSeconds=seconds)

    def ttl(self, seconds: int) -> Self:
        return self.spec(ttlSecondsAfterFinished=seconds)

    def suspended(self, value: bool = True) -> Self:
        return self.spec(suspend=value)

    def on_exit(self, action: str, *codes: int, operator: str = "In") -> Self:
        """Append a failure-policy rule: ``action`` for exit codes ``operator`` ``codes``."""
        policy = self._spec.setdefault("failurePolicy", {"rules": []})
        rule = {"action": action, "onExitCodes": {"operator": operator, "values": list(codes)}}
        policy["rules"].append(rule)
        return self

    def build(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)

    def typed(self, uid: str = "job-uid-0123456789", generation: int = 1) -> TrainJob:
        """The job as the store would hand it back: with a uid and a generation."""
        job = TrainJob.model_validate(self.build())
        job.metadata.uid = uid
        job.metadata.generation = generation
        return job


def make_trainjob(name: str = "j", namespace: str = "default") -> TrainJobBuilder:
    return TrainJobBuilder(name, namespace)


class TrainWorld:
    """One TrainJob in namespace ``default`` with its reconciler and the real scheduler,
    stepped by hand; several worlds may share a store (one job each)."""

    def __init__(self, service: ResourceService, clock: FakeClock, checkpoints: Path) -> None:
        self.service = service
        self.clock = clock
        recorder = EventRecorder(service.store, "trainjob-controller", clock=clock.now)
        self.reconciler = TrainJobReconciler(
            service, clock, recorder, tracking=None, checkpoint_root=checkpoints
        )
        sched_recorder = EventRecorder(service.store, "scheduler", clock=clock.now)
        self.scheduler = SchedulerReconciler(service, clock, sched_recorder)
        self.name = ""

    # -- the controllers -------------------------------------------------------------

    async def submit(self, job: TrainJobBuilder) -> TrainJob:
        created = await self.service.create("trainjobs", job.build())
        self.name = created["metadata"]["name"]
        return TrainJob.model_validate(created)

    async def tick(self) -> Result:
        """The job reconciler, a scheduling pass, the job reconciler again: the job's
        Workload is created, admitted if it fits, and its gang started in one tick.
        Returns the last job reconcile's result."""
        await self.reconcile()
        await self.schedule()
        return await self.reconcile()

    async def reconcile(self) -> Result:
        return await self.reconciler.reconcile(Request("default", self.name))

    async def schedule(self) -> None:
        await self.scheduler.reconcile(Request(None, "scheduler"))

    # -- the user --------------------------------------------------------------------

    async def set_spec(self, **fields: Any) -> None:
        """Edit the job's spec as ``cnai apply`` would."""
        job = await self.service.get("trainjobs", "default", self.name)
        job["spec"].update(fields)
        await self.service.update("trainjobs", job, "default", self.name)

    # -- the kubelet -----------------------------------------------------------------

    async def move(
        self, phase: PodPhase, *names: str, exit_code: int | None = None, reason: str = ""
    ) -> None:
        """Write ``phase`` (and an exit code and reason) into the pods' status."""
        for name in names:
            pod = await self.service.get("pods", "default", name)
            status = {**(pod.get("status") or {}), "phase": phase.value}
            if exit_code is not None:
                status["exitCode"] = exit_code
            if reason:
                status["reason"] = reason
            pod["status"] = status
            await self.service.update("pods", pod, "default", name, status=True)

    async def fail(self, name: str, exit_code: int = 1) -> None:
        await self.move(PodPhase.FAILED, name, exit_code=exit_code, reason="Error")

    async def release(self, *names: str) -> None:
        """Finish the pods' deletion (their processes stopped): drop their finalizers.
        Without names, every pod of the job being deleted."""
        if not names:
            pods = await self.pods()
            names = tuple(n for n, p in pods.items() if p["metadata"].get("deletionTimestamp"))
        for name in names:
            pod = await self.service.get("pods", "default", name)
            pod["metadata"]["finalizers"] = []
            await self.service.update("pods", pod, "default", name)

    # -- reading ---------------------------------------------------------------------

    async def job(self) -> TrainJob:
        return TrainJob.model_validate(await self.service.get("trainjobs", "default", self.name))

    async def gone(self) -> bool:
        try:
            await self.service.get("trainjobs", "default", self.name)
        except NotFound:
            return True
        return False

    async def workload(self) -> dict[str, Any]:
        job = await self.job()
        return await self.service.get("workloads", "default", workload_name(job))

    async def admitted(self) -> int:
        """The count the job's Workload is admitted with."""
        wl = await self.workload()
        (assignment,) = wl["status"]["admission"]["podSetAssignments"]
        count: int = assignment["count"]
        return count

    async def pods(self) -> dict[str, dict[str, Any]]:
        """The job's pods by name."""
        listed = await self.service.list("pods", "default", f"{TRAINJOB_NAME_LABEL}={self.name}")
        return {p["metadata"]["name"]: p for p in listed.items}

    async def phases(self) -> dict[str, str]:
        """Each pod's phase, with a ``+deleting`` mark on pods being deleted."""
        return {
            name: (pod.get("status") or {}).get("phase", "Pending")
            + ("+deleting" if pod["metadata"].get("deletionTimestamp") else "")
            for name, pod in (await self.pods()).items()
        }

    async def env(self, pod: str) -> dict[str, str]:
        """A pod's literal environment."""
        got = await self.service.get("pods", "default", pod)
        return {v["name"]: v.get("value") for v in got["spec"].get("env", [])}

    async def reasons(self) -> dict[str, int]:
        """How often each reason was recorded about the job (repeats folded in counts)."""
        counts: dict[str, int] = {}
        for e in await self._events():
            counts[e["reason"]] = counts.get(e["reason"], 0) + int(e.get("count", 1))
        return counts

    async def messages(self, reason: str) -> list[str]:
        return sorted(e["message"] for e in await self._events() if e["reason"] == reason)

    async def _events(self) -> list[dict[str, Any]]:
        listed = await self.service.list("events", "default")
        return [
            e
            for e in listed.items
            if e["involvedObject"]["name"] == self.name
            and e["involvedObject"]["kind"] == "TrainJob"
        ]


async def add_node(
    service: ResourceService, name: str, cpu: str, memory: str, gpus: int = 0
) -> None:
    """A Node as the runtime reports it: what the default ClusterQueue is sized from."""
    node = {"apiVersion": GROUP_VERSION, "kind": "Node", "metadata": {"name": name}}
    created = await service.create("nodes", node)
    created["status"] = {
        "allocatable": {"cpu": cpu, "memory": memory, "gpu": str(gpus)},
        "gpus": [{"index": i, "name": "H200"} for i in range(gpus)],
    }
    await service.update("nodes", created, None, name, status=True)


async def add_priority_class(service: ResourceService, name: str, value: int) -> None:
    body = {
        "apiVersion": GROUP_VERSION,
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": value,
    }
    await service.create("priorityclasses", body)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> Registry:
    r = Registry()
    register_kernel(r)
    register_kinds(r)
    cnai.training.register(SimpleNamespace(registry=r))  # no controller_factories: kind only
    return r


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "state.db", clock=clock.now)
    yield s
    await s.close()


@pytest.fixture
async def service(registry: Registry, store: SQLiteStore) -> ResourceService:
    svc = ResourceService(registry, store)
    await svc.create("namespaces", Namespace.new("default").to_dict())
    await add_node(svc, "node-a", cpu="8", memory="16Gi")
    return svc


@pytest.fixture
def checkpoints(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints"


@pytest.fixture
def world(service: ResourceService, clock: FakeClock, checkpoints: Path) -> TrainWorld:
    return TrainWorld(service, clock, checkpoints)


@pytest.fixture
def new_world(
    service: ResourceService, clock: FakeClock, checkpoints: Path
) -> Callable[[], TrainWorld]:
    """Makes more worlds on the same store (for jobs that compete for the node)."""
    return lambda: TrainWorld(service, clock, checkpoints)
