"""Batch: the ``Job`` kind and its controller (DESIGN.md section 3, workloads).

``register(platform)`` hands the kind (with its printer columns and admission rules) and
the job controller's factory to the platform.
"""

from __future__ import annotations

from typing import Any, Protocol

from cnai.batch.admission import job_validator, pod_validators
from cnai.batch.api import Job, JobPhase, JobSpec, JobStatus
from cnai.batch.controller import JobReconciler, job_controller
from cnai.core.registry import Column, KindInfo, Registry
from cnai.scheduling.references import queue_references

__all__ = ["Job", "JobPhase", "JobReconciler", "JobSpec", "JobStatus", "job_kind", "register"]

COLUMNS = (
    Column("STATUS", "status.phase"),
    Column("COMPLETIONS", "status.completionsText"),
    Column("ACTIVE", "status.active"),
    Column("FAILED", "status.failed"),
    Column("QUEUE", "spec.queue", wide=True),
    Column("STARTED", "status.startTime", wide=True, type="date"),
)


class _Platform(Protocol):
    """What registration needs of the platform (typed here so batch need not import it)."""

    registry: Registry


def job_kind(registry: Registry) -> KindInfo:
    """The Job kind, its template checked by the Pod rules already in ``registry``."""
    return KindInfo(
        Job,
        columns=COLUMNS,
        validators=(job_validator(pod_validators(registry)),),
        reference_checks=(queue_references,),
    )


def register(platform: _Platform) -> None:
    """Register the Job kind and, where the platform runs controllers, the job controller."""
    platform.registry.register(job_kind(platform.registry))
    factories: list[Any] | None = getattr(platform, "controller_factories", None)
    if factories is not None:
        factories.append(job_controller)
