"""Fixtures for batch tests: a real SQLite store, the kernel, scheduling and Job kinds, a
fake clock, and one Node with the default queues sized from it.

There is no runtime here: :class:`JobWorld` plays the kubelet's part, moving pods
between phases by writing their status, and steps the job reconciler and the scheduler
tick by tick.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cnai.batch import job_kind
from cnai.batch.api import Job
from cnai.batch.controller import JobReconciler
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

from .builders import JobBuilder


class JobWorld:
    """One namespace with the job reconciler, stepped by hand."""

    def __init__(self, service: ResourceService, clock: FakeClock) -> None:
        self.service = service
        self.clock = clock
        recorder = EventRecorder(service.store, "job-controller", clock=clock.now)
        self.reconciler = JobReconciler(service, clock, recorder)
        sched_recorder = EventRecorder(service.store, "scheduler", clock=clock.now)
        self.scheduler = SchedulerReconciler(service, clock, sched_recorder)
        self.name = ""

    async def submit(self, job: JobBuilder) -> Job:
        created = await self.service.create("jobs", job.build())
        self.name = created["metadata"]["name"]
        return Job.model_validate(created)

    async def tick(self) -> Result:
        """The job reconciler, a scheduling pass, the job reconciler again: a job's
        Workload is created, admitted if it fits, and its pods started in one tick.
        Returns the last job reconcile's result."""
        await self.reconcile()
        await self.schedule()
        return await self.reconcile()

    async def reconcile(self) -> Result:
        return await self.reconciler.reconcile(Request("default", self.name))

    async def schedule(self) -> None:
        await self.scheduler.reconcile(Request(None, "scheduler"))

    async def workload(self) -> dict[str, Any]:
        return await self.service.get("workloads", "default", self.name)

    async def job(self) -> Job:
        return Job.model_validate(await self.service.get("jobs", "default", self.name))

    async def gone(self) -> bool:
        try:
            await self.service.get("jobs", "default", self.name)
        except NotFound:
            return True
        return False

    async def pods(self) -> dict[str, dict[str, Any]]:
        """The job's pods by name."""
        listed = await self.service.list("pods", "default", f"cnai.io/job-name={self.name}")
        return {p["metadata"]["name"]: p for p in listed.items}

    async def phases(self) -> dict[str, str]:
        """Each pod's phase, with a ``+deleting`` mark on pods being deleted."""
        return {
            name: (pod.get("status") or {}).get("phase", "Pending")
            + ("+deleting" if pod["metadata"].get("deletionTimestamp") else "")
            for name, pod in (await self.pods()).items()
        }

    async def move(self, phase: PodPhase, *names: str) -> None:
        """Play the kubelet: write ``phase`` into the pods' status."""
        for name in names:
            pod = await self.service.get("pods", "default", name)
            pod["status"] = {**(pod.get("status") or {}), "phase": phase.value}
            await self.service.update("pods", pod, "default", name, status=True)

    async def reasons(self) -> dict[str, int]:
        """How often each reason was recorded about the job (repeats folded in counts)."""
        listed = await self.service.list("events", "default")
        counts: dict[str, int] = {}
        for e in listed.items:
            if e["involvedObject"]["name"] == self.name and e["involvedObject"]["kind"] == "Job":
                counts[e["reason"]] = counts.get(e["reason"], 0) + int(e.get("count", 1))
        return counts

    async def messages(self, reason: str) -> list[str]:
        listed = await self.service.list("events", "default")
        return sorted(
            e["message"]
            for e in listed.items
            if e["involvedObject"]["name"] == self.name
            and e["involvedObject"]["kind"] == "Job"
            and e["reason"] == reason
        )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> Registry:
    r = Registry()
    register_kernel(r)
    register_kinds(r)
    r.register(job_kind(r))
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


async def add_node(
    service: ResourceService, name: str, cpu: str, memory: str, gpus: int = 0
) -> None:
    """A Node as the runtime reports it: what the default ClusterQueue is sized from."""
    node = {"apiVersion": "cnai.io/v1alpha1", "kind": "Node", "metadata": {"name": name}}
    created = await service.create("nodes", node)
    created["status"] = {
        "allocatable": {"cpu": cpu, "memory": memory, "gpu": str(gpus)},
        "gpus": [{"index": i, "name": "H200"} for i in range(gpus)],
    }
    await service.update("nodes", created, None, name, status=True)


@pytest.fixture
def world(service: ResourceService, clock: FakeClock) -> JobWorld:
    return JobWorld(service, clock)
