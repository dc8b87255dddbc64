"""The pods of a job: deterministic names, the pod built from the template, and counts.

Pod names are ``<job>-<attempt>``, where attempt numbers the job's pods from 0. The
next attempt is derived from the pods that exist, so a controller that crashes between
creating a pod and writing status creates the same name again and gets AlreadyExists,
never a duplicate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cnai.batch.api import JOB_NAME_LABEL, JOB_UID_LABEL, Job
from cnai.core.kubelet import GPU_ANNOTATION
from cnai.core.meta import ObjectMeta, controller_ref
from cnai.core.pods import EnvVar, Pod, PodPhase
from cnai.scheduling.api import WORKLOAD_ANNOTATION, PodPlacement

MAX_NAME = 63  # pod names are DNS-1123 labels


def pod_name(job_name: str, attempt: int) -> str:
    """``<job>-<attempt>``, the job part shortened to keep the name within 63 characters."""
    suffix = f"-{attempt}"
    return job_name[: MAX_NAME - len(suffix)].rstrip("-") + suffix


def attempt_of(pod: Pod) -> int | None:
    """The attempt number in a pod's name, or None if it does not end in one."""
    _, _, tail = pod.metadata.name.rpartition("-")
    return int(tail) if tail.isdigit() else None


def next_attempt(pods: Iterable[Pod]) -> int:
    """One past the highest attempt among ``pods`` (0 for none)."""
    attempts = [a for a in map(attempt_of, pods) if a is not None]
    return max(attempts, default=-1) + 1


def pod_selector(job: Job) -> str:
    """The label selector of the job's pods (by uid: a new job of the same name is not it)."""
    return f"{JOB_UID_LABEL}={job.metadata.uid}"


def build_pod(
    job: Job,
    attempt: int,
    placement: PodPlacement | None = None,
    env: Sequence[EnvVar] = (),
) -> Pod:
    """The pod of one attempt: the template's spec, labels and annotations, owned by the job.

    With a ``placement`` (a slot of the job's admitted Workload) the pod is bound to its
    node and GPUs, and names the Workload (same name as the job) whose quota it uses.
    ``env`` (the job's tracking run and token) comes before the template's variables,
    so the template's win.
    """
    template = job.spec.template
    labels = {
        **template.metadata.labels,
        JOB_NAME_LABEL: job.metadata.name,
        JOB_UID_LABEL: job.metadata.uid or "",
    }
    meta = ObjectMeta(
        name=pod_name(job.metadata.name, attempt),
        namespace=job.metadata.namespace,
        labels=labels,
        annotations=dict(template.metadata.annotations),
        owner_references=[controller_ref(job)],
    )
    spec = template.spec.model_copy(deep=True)
    if env:
        own = {v.name for v in spec.env}
        spec.env = [v for v in env if v.name not in own] + spec.env
    if placement is not None:
        spec.node_name = placement.node_name
        meta.annotations[WORKLOAD_ANNOTATION] = job.metadata.name
        if placement.gpus:
            meta.annotations[GPU_ANNOTATION] = ",".join(map(str, placement.gpus))
    return Pod(metadata=meta, spec=spec)


def is_terminating(pod: Pod) -> bool:
    return pod.metadata.deletion_timestamp is not None


@dataclass(frozen=True)
class PodCounts:
    """The job's pods by state.

    A pod being deleted before it finished (stopped on suspend, deadline or failure) is
    terminating: neither active nor failed, as Kubernetes does not count pods it stops
    itself against the backoff limit.
    """

    active: tuple[Pod, ...]
    succeeded: int
    failed: int
    running: int

    @classmethod
    def of(cls, pods: Iterable[Pod]) -> PodCounts:
        pods = list(pods)
        phase = [p.status.phase for p in pods]
        return cls(
            active=tuple(p for p in pods if not p.status.phase.terminal and not is_terminating(p)),
            succeeded=phase.count(PodPhase.SUCCEEDED),
            failed=sum(
                1 for p in pods if p.status.phase == PodPhase.FAILED and not is_terminating(p)
            ),
            running=sum(
                1 for p in pods if p.status.phase == PodPhase.RUNNING and not is_terminating(p)
            ),
        )
