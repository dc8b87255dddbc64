"""Fluent builders for batch tests: ``make_job("j").parallelism(2).completions(4).build()``.

``make_pod`` builds typed pods in a given phase for the pure decision tests; the
controller tests get their pods from the reconciler and move them through
:class:`JobWorld` instead.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any, Self

from cnai.batch.api import JOB_NAME_LABEL, JOB_UID_LABEL, Job
from cnai.core.meta import ObjectMeta
from cnai.core.pods import Pod, PodPhase, PodStatus
from cnai.version import GROUP_VERSION

T0 = datetime(2026, 1, 1, tzinfo=UTC)  # cnai.core.clock.FakeClock's start
PROGRAM = ["python3", "-c", "print(6 * 7)"]


class JobBuilder:
    """Builds a Job as wire data (camelCase keys), as a client would send it."""

    def __init__(self, name: str, namespace: str = "default") -> None:
        self._obj: dict[str, Any] = {
            "apiVersion": GROUP_VERSION,
            "kind": "Job",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"template": {"spec": {"command": list(PROGRAM)}}},
        }

    @property
    def _spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = self._obj["spec"]
        return spec

    @property
    def _template(self) -> dict[str, Any]:
        template: dict[str, Any] = self._spec["template"]
        return template

    def ns(self, namespace: str) -> Self:
        self._obj["metadata"]["namespace"] = namespace
        return self

    def parallelism(self, n: int) -> Self:
        return self.spec(parallelism=n)

    def completions(self, n: int) -> Self:
        return self.spec(completions=n)

    def backoff_limit(self, n: int) -> Self:
        return self.spec(backoffLimit=n)

    def deadline(self, seconds: int) -> Self:
        return self.spec(activeDeadlineSeconds=seconds)

    def ttl(self, seconds: int) -> Self:
        return self.spec(ttlSecondsAfterFinished=seconds)

    def suspended(self, value: bool = True) -> Self:
        return self.spec(suspend=value)

    def queue(self, name: str) -> Self:
        return self.spec(queue=name)

    def spec(self, **fields: Any) -> Self:
        self._spec.update(fields)
        return self

    def pod(self, **fields: Any) -> Self:
        """Set fields of the template's pod spec (wire names)."""
        self._template["spec"].update(fields)
        return self

    def template_labels(self, **labels: str) -> Self:
        self._template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
        return self

    def without_template(self) -> Self:
        self._spec.pop("template")
        return self

    def build(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)

    def typed(self, uid: str = "job-uid", generation: int = 1) -> Job:
        """The job as the store would hand it back: with a uid and a generation."""
        job = Job.model_validate(self.build())
        job.metadata.uid = uid
        job.metadata.generation = generation
        return job


def make_job(name: str = "j", namespace: str = "default") -> JobBuilder:
    return JobBuilder(name, namespace)


def make_pod(
    name: str,
    phase: PodPhase = PodPhase.PENDING,
    *,
    terminating: bool = False,
    job: str = "j",
    uid: str = "job-uid",
) -> Pod:
    """A typed pod of job ``job`` in ``phase``; ``terminating`` gives it a deletionTimestamp."""
    meta = ObjectMeta(
        name=name,
        namespace="default",
        labels={JOB_NAME_LABEL: job, JOB_UID_LABEL: uid},
        deletion_timestamp=T0 if terminating else None,
    )
    return Pod(metadata=meta, status=PodStatus(phase=phase))
