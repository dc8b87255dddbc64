"""A Job's Workload: the gang it asks the scheduler for, and what the answer allows.

DESIGN.md section 3: a job controller never starts processes itself; it creates a
Workload (same name as the Job, owned by it) in the Job's LocalQueue and creates pods
only while the scheduler has admitted it, at most the admitted count, each on the node
(and GPUs) of a free slot of the Workload's placement. When the pods the job wants at
once change (its parallelism or minParallelism was edited, or fewer completions are
left), it resizes the Workload (:func:`resized`). The :class:`Gate` is what the pure
decision needs to know of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from cnai.batch.api import Job
from cnai.core.meta import ObjectMeta, controller_ref
from cnai.core.pods import Pod
from cnai.scheduling.api import PodSet, Workload, WorkloadSpec
from cnai.scheduling.gate import OPEN, QUEUED, Gate, admission_gate, free_slots, surplus

__all__ = [
    "OPEN",
    "QUEUED",
    "Gate",
    "build_workload",
    "free_slots",
    "gate_of",
    "pod_set",
    "resized",
    "surplus",
    "wanted_pods",
]

WORKLOADS = "workloads"
DEFAULT_QUEUE = "default"  # keep in sync with cnai.scheduling.defaults.DEFAULT
POD_SET = "main"
NO_PARALLELISM = "NoParallelism"


def wanted_pods(job: Job, succeeded: int) -> int:
    """Pods the job runs at once: parallelism, capped by the completions still wanted."""
    return min(job.spec.parallelism, job.spec.completions - succeeded)


def pod_set(job: Job, count: int) -> PodSet:
    """The job's one pod set at ``count`` pods: minParallelism, capped at ``count``, is
    its minCount (unset when equal, so a job without minParallelism is a plain gang)."""
    spec = job.spec
    min_count = None if spec.min_parallelism is None else min(spec.min_parallelism, count)
    return PodSet(
        name=POD_SET,
        count=count,
        min_count=min_count if min_count != count else None,
        requests=dict(spec.template.spec.resources.requests),
    )


def build_workload(job: Job, count: int) -> Workload:
    """The Workload of ``job``: one pod set of ``count`` pods with the template's requests."""
    return Workload(
        metadata=ObjectMeta(
            name=job.metadata.name,
            namespace=job.metadata.namespace,
            owner_references=[controller_ref(job)],
        ),
        spec=WorkloadSpec(
            queue_name=job.spec.queue or DEFAULT_QUEUE,
            priority_class_name=job.spec.priority_class_name,
            pod_sets=[pod_set(job, count)],
        ),
    )


def resized(wl: Workload, job: Job, count: int) -> Workload | None:
    """``wl`` with its pod set asking for ``count`` pods (and the minCount that goes with
    it), or None if it already does. ``count`` is :func:`wanted_pods`: it follows
    parallelism both ways and caps down as completions are reached, never back up (the
    succeeded count only grows), so following it causes no resize loop. The scheduler
    grows an admitted Workload whose count rose, and trims one whose count fell; the
    requests never change (the template is immutable)."""
    want = pod_set(job, count)
    have = [ps for ps in wl.spec.pod_sets if ps.name == POD_SET]
    if not have or (have[0].count, have[0].min_count) == (want.count, want.min_count):
        return None
    sets = [
        ps.model_copy(update={"count": want.count, "min_count": want.min_count})
        if ps.name == POD_SET
        else ps
        for ps in wl.spec.pod_sets
    ]
    return wl.model_copy(update={"spec": wl.spec.model_copy(update={"pod_sets": sets})})


def gate_of(wl: Workload | None, active: Iterable[Pod] = (), parallelism: int = 1) -> Gate:
    """What the Workload's status allows the job to do now (:func:`admission_gate`). A
    job with ``parallelism`` 0 has no Workload and runs nothing until it is raised."""
    if wl is None and parallelism == 0:
        message = "parallelism is 0: no pods run until it is raised"
        return Gate(False, 0, reason=NO_PARALLELISM, message=message)
    return admission_gate(wl, active)
