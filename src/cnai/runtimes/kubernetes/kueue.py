"""Handing admission to Kueue: the labels and annotations that make Kueue queue cnai's pods.

When a cluster already runs Kueue, its administrators keep their ClusterQueues, cohorts
and quotas, and cnai hands every workload it renders to a LocalQueue instead of
admitting it itself. Pure functions over rendered objects; :mod:`.render` applies them.

Why Kueue's plain pods and pod groups rather than a suspended Indexed ``batch/v1`` Job:
the unit the Kubernetes runtime runs is one pod, and each rank of a TrainJob gang has
its own environment (RANK, NODE_RANK, ...) that an Indexed Job's single template could
only derive from ``JOB_COMPLETION_INDEX`` by wrapping the user's command. Nor does cnai
need the Job controller's retries: a gang that fails is restarted by the TrainJob
controller as a new gang with new pod names. A pod group is what Kueue offers for
exactly that case ("environments where the Pods are managed by external controllers
directly, without a Job-level CRD"); its cost is that the cluster must enable Kueue's
``pod`` integration, which is off by default.

The fields used, as Kueue's documentation specifies them (kueue.sigs.k8s.io, pages
"Run Plain Pods", "Run Deployment" and "Workload Priority Class"):

- label ``kueue.x-k8s.io/queue-name``: the LocalQueue, on a Pod's ``metadata.labels``
  and, for a Deployment, on its pod template's labels (each replica is one plain pod);
- label ``kueue.x-k8s.io/pod-group-name`` and annotation
  ``kueue.x-k8s.io/pod-group-total-count`` (a decimal string), on every member of a
  group, consistently: the group is admitted together, all or nothing;
- annotation ``kueue.x-k8s.io/retriable-in-group: "false"``: Kueue does not wait for
  replacement pods and finishes the group's Workload once all its pods have ended, which
  is cnai's gang semantics (a failed gang is replaced by a new group, never patched);
- label ``kueue.x-k8s.io/priority-class``: a WorkloadPriorityClass for queue order and
  preemption, independent of the pods' own priority.

Kueue's webhook adds its scheduling gate to such pods itself, and injects the admitted
flavor's node labels; so with Kueue the renderer sets neither ``nodeName`` nor a node
selector of its own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

Obj = dict[str, Any]

# Kueue's names; the documentation pages above define them. Keep in sync with the
# test that checks them (tests/unit/runtimes/kubernetes/test_kueue_volcano.py).
QUEUE_NAME_LABEL = "kueue.x-k8s.io/queue-name"
POD_GROUP_NAME_LABEL = "kueue.x-k8s.io/pod-group-name"
POD_GROUP_TOTAL_COUNT_ANNOTATION = "kueue.x-k8s.io/pod-group-total-count"
RETRIABLE_IN_GROUP_ANNOTATION = "kueue.x-k8s.io/retriable-in-group"
PRIORITY_CLASS_LABEL = "kueue.x-k8s.io/priority-class"


@dataclass(frozen=True)
class KueueGroup:
    """A Kueue pod group: pods admitted together, ``total`` of them."""

    name: str
    total: int

    def __post_init__(self) -> None:
        if self.total < 1:
            raise ValueError(f"pod group {self.name!r}: total must be at least 1")


def _labels(meta: Obj, queue: str, priority_class: str) -> None:
    labels = meta.setdefault("labels", {})
    labels[QUEUE_NAME_LABEL] = queue
    if priority_class:
        labels[PRIORITY_CLASS_LABEL] = priority_class


def queue_pod(
    pod: Obj, queue: str, *, group: KueueGroup | None = None, priority_class: str = ""
) -> Obj:
    """A copy of the rendered ``pod`` submitted to LocalQueue ``queue`` (in ``group``)."""
    if not queue:
        raise ValueError("a Kueue hand-off needs a LocalQueue name")
    out = copy.deepcopy(pod)
    meta = out.setdefault("metadata", {})
    _labels(meta, queue, priority_class)
    if group is not None:
        meta["labels"][POD_GROUP_NAME_LABEL] = group.name
        annotations = meta.setdefault("annotations", {})
        annotations[POD_GROUP_TOTAL_COUNT_ANNOTATION] = str(group.total)
        annotations[RETRIABLE_IN_GROUP_ANNOTATION] = "false"
    return out


def queue_deployment(deployment: Obj, queue: str, *, priority_class: str = "") -> Obj:
    """A copy of ``deployment`` whose replicas Kueue admits one by one from ``queue``.

    The label goes on the pod template, where the documentation asks for it, and on the
    Deployment too, where newer Kueue releases read it; both say the same.
    """
    if not queue:
        raise ValueError("a Kueue hand-off needs a LocalQueue name")
    out = copy.deepcopy(deployment)
    _labels(out.setdefault("metadata", {}), queue, priority_class)
    template = out.setdefault("spec", {}).setdefault("template", {})
    _labels(template.setdefault("metadata", {}), queue, priority_class)
    return out
