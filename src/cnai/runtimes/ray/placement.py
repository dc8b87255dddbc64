"""From cnai's terms to Ray's: a pod's requests as actor resources, a gang as a placement
group, a Ray node as a cnai Node. Pure functions (no ``ray`` import), unit-tested alone.

A TrainJob gang member carries the gang's identity in labels (see
``cnai.training.api``: keep the four names below in sync). All members of one start
of a gang share one placement group, ``gang-<trainjob uid>-<generation>``, with one
bundle per member; rank ``r`` runs in bundle ``r``. Members are assumed alike (a
TrainJob's workers share one template): the group is made, by whichever member is
launched first, of ``num-nodes`` copies of that member's resources.

The pod annotation ``cnai.io/placement-strategy`` picks Ray's strategy for the group:
``PACK`` (the default: as few Ray nodes as possible), ``SPREAD`` (as many as possible),
``STRICT_PACK`` (one node) or ``STRICT_SPREAD`` (one node per member).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from cnai.core.quantity import format_bytes, parse_quantity
from cnai.core.runtime import NodeInfo

TRAINJOB_UID_LABEL = "cnai.io/trainjob-uid"  # keep in sync with cnai.training.api
GENERATION_LABEL = "cnai.io/gang-generation"
RANK_LABEL = "cnai.io/node-rank"
WORLD_ANNOTATION = "cnai.io/num-nodes"
STRATEGY_ANNOTATION = "cnai.io/placement-strategy"
# The cnai Nodes cnai's scheduler placed the gang's ranks on, in rank order (keep in sync
# with cnai.training.gang.GANG_NODES_ANNOTATION).
GANG_NODES_ANNOTATION = "cnai.io/gang-nodes"
STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
DEFAULT_STRATEGY = "PACK"
NODE_ID_LABEL = "ray.io/node-id"
RUNTIME_LABEL = "cnai.io/runtime"
# Ray rejects a bundle with no resources: a member that asks for none reserves this much.
MIN_BUNDLE_CPU = 0.001
# Requests that are not Ray custom resources; any other name is one (as Kubernetes'
# extended resources), and a Node's capacity lists the Ray node's custom resources.
_NOT_CUSTOM = {"cpu", "memory", "gpu", "ephemeral-storage"}
_RAY_BUILTIN = {"CPU", "GPU", "memory", "object_store_memory"}
_NOT_DNS = re.compile(r"[^a-z0-9-]")


@dataclass(frozen=True)
class Gang:
    """A pod's place in its gang: the placement group, its size, strategy and the rank."""

    group: str
    size: int
    rank: int
    strategy: str = DEFAULT_STRATEGY
    # Where cnai's scheduler placed each rank (cnai Node names), when the pod says.
    nodes: tuple[str, ...] = ()


def resources_of(pod: dict[str, Any] | None, cpu_request: float = 0.0) -> dict[str, float]:
    """A pod's requests as Ray resources (``CPU``, ``GPU``, ``memory`` in bytes, custom
    ones by name); the resolved ``cpu_request`` when there is no Pod object. Fractional
    GPUs stay fractions."""
    resources = ((pod or {}).get("spec") or {}).get("resources") or {}
    requests = resources.get("requests") or {}
    gpu = requests.get("gpu", (resources.get("limits") or {}).get("gpu", 0))
    out = {
        "CPU": float(parse_quantity(requests["cpu"])) if "cpu" in requests else cpu_request,
        "GPU": float(parse_quantity(gpu)),
        "memory": float(int(parse_quantity(requests.get("memory", 0)))),
    }
    for name, quantity in requests.items():
        if name not in _NOT_CUSTOM:  # an extended resource: a Ray custom resource
            out[name] = float(parse_quantity(quantity))
    return {k: v for k, v in out.items() if v > 0}


def gang_of(pod: dict[str, Any] | None) -> Gang | None:
    """The pod's gang, or None for a pod on its own (or one whose labels are incomplete)."""
    meta = (pod or {}).get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    job, generation = labels.get(TRAINJOB_UID_LABEL), labels.get(GENERATION_LABEL, "0")
    try:
        rank, size = int(labels[RANK_LABEL]), int(annotations[WORLD_ANNOTATION])
    except (KeyError, ValueError):
        return None
    if not job or not 0 <= rank < size:
        return None
    strategy = str(annotations.get(STRATEGY_ANNOTATION, DEFAULT_STRATEGY)).upper()
    if strategy not in STRATEGIES:
        raise ValueError(
            f"annotation {STRATEGY_ANNOTATION}={strategy!r} is not one of {', '.join(STRATEGIES)}"
        )
    nodes = tuple(n for n in str(annotations.get(GANG_NODES_ANNOTATION, "")).split(",") if n)
    return Gang(
        f"gang-{job}-{generation}", size, rank, strategy, nodes if len(nodes) == size else ()
    )


def bundle(resources: dict[str, float]) -> dict[str, float]:
    """A placement-group bundle for one member (never empty: Ray refuses that)."""
    return dict(resources) if resources else {"CPU": MIN_BUNDLE_CPU}


def describe(resources: dict[str, float]) -> str:
    """``cpu=1, gpu=0.5, memory=1Gi``, for messages."""
    names = {"CPU": "cpu", "GPU": "gpu", "memory": "memory"}
    parts = [
        f"{names.get(k, k)}={format_bytes(int(v)) if k == 'memory' else f'{v:g}'}"
        for k, v in sorted(resources.items())
    ]
    return ", ".join(parts) or "nothing"


def fits_somewhere(want: dict[str, float], nodes: list[dict[str, Any]]) -> bool:
    """Whether one alive Ray node's total resources could ever hold ``want``."""
    return any(
        all(float((n.get("Resources") or {}).get(k, 0.0)) >= v for k, v in want.items())
        for n in nodes
        if n.get("Alive")
    )


def node_name(node_id: str) -> str:
    """The cnai Node name of a Ray node: ``ray-`` and the first 12 hex digits of its id
    (a DNS-1123 label, stable for the node's life; Ray gives a restarted node a new id)."""
    return "ray-" + _NOT_DNS.sub("", node_id.lower())[:12]


def _cpu(cores: float) -> str:
    millicores = round(Decimal(str(cores)) * 1000)
    return str(millicores // 1000) if millicores % 1000 == 0 else f"{millicores}m"


def _count(count: float) -> str:
    return str(int(count)) if float(count).is_integer() else f"{count:g}"


def node_info(node: dict[str, Any]) -> NodeInfo:
    """A Ray node (an entry of ``ray.nodes()``) as a cnai Node: its total resources."""
    total = node.get("Resources") or {}
    node_id = str(node["NodeID"])
    capacity = {
        "cpu": _cpu(float(total.get("CPU", 0.0))),
        "memory": format_bytes(int(total.get("memory", 0))),
        "gpu": _count(float(total.get("GPU", 0.0))),
    }
    for resource, amount in total.items():
        if resource not in _RAY_BUILTIN and ":" not in resource:  # node:<ip>, accelerator_type:
            capacity[resource] = _count(float(amount))
    labels = {
        k: str(v)
        for k, v in (node.get("Labels") or {}).items()
        if isinstance(k, str) and k.startswith("ray.io/")
    }
    name = node_name(node_id)
    labels |= {
        NODE_ID_LABEL: node_id,
        RUNTIME_LABEL: "ray",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
    }
    gpus: list[dict[str, object]] = [
        {"index": i, "name": "Ray GPU", "uuid": f"{name}-gpu-{i}", "memoryBytes": 0}
        for i in range(int(float(total.get("GPU", 0.0))))
    ]
    return NodeInfo(
        name=name,
        capacity=capacity,
        allocatable=dict(capacity),
        gpus=gpus,
        memory_enforcement="ray",
        labels=labels,
    )
