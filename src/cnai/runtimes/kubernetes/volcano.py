"""Gang scheduling by Volcano: a PodGroup per TrainJob gang, and pods that join it.

When the cluster runs Volcano, cnai hands it the all-or-nothing placement of a gang:
Volcano binds none of the gang's pods until all ``minMember`` of them fit at once, so a
half-placed gang never holds GPUs while it waits for the rest. Pure functions over
rendered objects; :mod:`.render` applies them and the runtime creates the PodGroup
before the gang's first pod.

The fields used, as Volcano documents them (volcano.sh, "PodGroup", and the API types
of ``scheduling.volcano.sh/v1beta1`` in volcano-sh/apis): ``spec.minMember`` (int32, the
fewest pods worth starting), ``spec.minResources`` (a ResourceList: what those pods need
together), ``spec.queue`` (a Volcano Queue, ``default`` unless set) and
``spec.priorityClassName`` (a PriorityClass, for queue order and preemption). A pod
joins a group through the annotation ``scheduling.k8s.io/group-name`` and is placed by
Volcano when its ``schedulerName`` is ``volcano``.
"""

from __future__ import annotations

import copy
import re
from decimal import Decimal
from typing import Any

from cnai.core.quantity import parse_quantity

Obj = dict[str, Any]

API_VERSION = "scheduling.volcano.sh/v1beta1"
KIND = "PodGroup"
GROUP_NAME_ANNOTATION = "scheduling.k8s.io/group-name"
SCHEDULER_NAME = "volcano"
DEFAULT_QUEUE = "default"

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)$")


def times(quantity: str, n: int) -> str:
    """``n`` times a Kubernetes quantity, in the quantity's own unit (``512Mi`` x 2 is
    ``1024Mi``), so the sum reads like what the user wrote."""
    m = _QUANTITY.match(quantity.strip())
    if not m:
        raise ValueError(f"{quantity!r} is not a quantity such as 500m, 2 or 512Mi")
    total = Decimal(m[1]) * n
    return f"{total.normalize():f}{m[2]}"


def gang_resources(pod: Obj, members: int) -> dict[str, str]:
    """What ``members`` copies of the rendered ``pod`` request together: its containers'
    requests, and limits of resources with no request (extended resources such as GPUs,
    whose request defaults to the limit)."""
    per_pod: dict[str, list[str]] = {}
    for container in (pod.get("spec") or {}).get("containers") or ():
        resources = container.get("resources") or {}
        wanted = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name, value in wanted.items():
            per_pod.setdefault(name, []).append(str(value))
    total: dict[str, str] = {}
    for name, values in sorted(per_pod.items()):
        if len(values) == 1:
            total[name] = times(values[0], members)
        else:  # several containers: add them up in base units
            units = sum((parse_quantity(v) for v in values), Decimal(0)) * members
            total[name] = f"{units.normalize():f}"
    return total


def render_pod_group(
    name: str,
    namespace: str,
    *,
    min_member: int,
    min_resources: dict[str, str],
    queue: str = DEFAULT_QUEUE,
    priority_class_name: str = "",
    labels: dict[str, str] | None = None,
    owner_references: list[Obj] | None = None,
) -> Obj:
    """The PodGroup of one gang: Volcano starts its pods only when ``min_member`` fit."""
    if min_member < 1:
        raise ValueError(f"PodGroup {name!r}: spec.minMember must be at least 1")
    meta: Obj = {"name": name, "namespace": namespace}
    if labels:
        meta["labels"] = dict(labels)
    if owner_references:
        meta["ownerReferences"] = copy.deepcopy(owner_references)
    spec: Obj = {"minMember": min_member, "queue": queue or DEFAULT_QUEUE}
    if min_resources:
        spec["minResources"] = dict(min_resources)
    if priority_class_name:
        spec["priorityClassName"] = priority_class_name
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": meta, "spec": spec}


def join_pod_group(pod: Obj, group: str) -> Obj:
    """A copy of the rendered ``pod`` that Volcano places as a member of ``group``."""
    out = copy.deepcopy(pod)
    out.setdefault("metadata", {}).setdefault("annotations", {})[GROUP_NAME_ANNOTATION] = group
    out.setdefault("spec", {})["schedulerName"] = SCHEDULER_NAME
    return out
