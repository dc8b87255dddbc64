"""register(platform): the Job kind with its columns, and the job controller's factory."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import cnai.batch
from cnai.batch.controller import JobReconciler, job_controller
from cnai.core.clock import FakeClock
from cnai.core.controllers.types import ControllerContext
from cnai.core.events import EventRecorder
from cnai.core.kernel import register_kernel
from cnai.core.registry import Registry
from cnai.core.selectors import get_path


def platform(**extra: Any) -> Any:
    registry = Registry()
    register_kernel(registry)
    return SimpleNamespace(registry=registry, **extra)


def test_register_adds_the_job_kind_and_the_controller_factory() -> None:
    p = platform(controller_factories=[])
    cnai.batch.register(p)
    info = p.registry.resolve("job")
    assert info is not None
    assert (info.kind, info.plural, info.namespaced) == ("Job", "jobs", True)
    assert p.controller_factories == [job_controller]


def test_register_works_on_a_platform_without_controllers() -> None:
    p = platform()
    cnai.batch.register(p)
    assert p.registry.by_plural("jobs") is not None


def test_the_factory_builds_the_job_controller_owning_pods_and_workloads() -> None:
    recorders: list[str] = []

    def recorder(component: str) -> EventRecorder:
        recorders.append(component)
        return cast(EventRecorder, object())

    ctx = cast(
        ControllerContext,
        SimpleNamespace(service=object(), clock=FakeClock(), recorder=recorder, services={}),
    )
    spec = job_controller(ctx)
    assert (spec.name, spec.kind) == ("job-controller", "jobs")
    assert spec.owns == ("pods", "workloads", "secrets")
    assert isinstance(spec.reconciler, JobReconciler)
    assert recorders == ["job-controller"]


def test_printer_columns_point_at_fields_the_controller_writes() -> None:
    job = {
        "spec": {"queue": "team-a"},
        "status": {"phase": "Running", "completionsText": "1/4", "active": 2, "failed": 0},
    }
    info = cnai.batch.job_kind(Registry())
    values = {c.name: get_path(job, c.path) for c in info.columns if c.name != "STARTED"}
    assert values == {
        "STATUS": "Running",
        "COMPLETIONS": "1/4",
        "ACTIVE": 2,
        "FAILED": 0,
        "QUEUE": "team-a",
    }
