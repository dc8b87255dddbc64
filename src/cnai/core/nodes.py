"""Node objects from the runtime: one for the runtime's machine, or one per machine of a
multi-node runtime (:class:`~cnai.core.runtime.MultiNode`, e.g. Ray), kept current by the
platform's refresh loop.

A node the runtime stops reporting is not deleted: it becomes NotReady (reason
``NodeLost``) and unschedulable, so that cnai's scheduler (which skips unschedulable
Nodes) and the pod controller (which binds only to Ready ones) stop placing pods there,
while the pods bound to it still name a Node that says what happened.
"""

from __future__ import annotations

from typing import Any

from cnai.core.errors import NotFound
from cnai.core.resources import ResourceService
from cnai.core.runtime import MultiNode, NodeInfo, Runtime
from cnai.core.store.protocol import Obj

NODES = "nodes"


def is_ready(node: Obj) -> bool:
    """False only where the Node says it is not Ready (a multi-node runtime's lost node);
    a Node without a Ready condition counts as ready, as it always has."""
    conditions = (node.get("status") or {}).get("conditions") or ()
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    return ready is None or ready.get("status") == "True"


def node_status(info: NodeInfo, runtime_name: str) -> dict[str, Any]:
    """Pure: the status of a Node the runtime reports alive."""
    return {
        "capacity": info.capacity,
        "allocatable": info.allocatable,
        "gpus": info.gpus,
        "runtime": runtime_name,
        "memoryEnforcement": info.memory_enforcement,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "RuntimeReady",
                "message": f"{runtime_name} runtime is running",
            }
        ],
    }


async def _get_or_create_node(service: ResourceService, info: NodeInfo) -> Obj:
    body: Obj = {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Node",
        "metadata": {"name": info.name, "labels": info.labels},
    }
    try:
        return await service.get(NODES, None, info.name)
    except NotFound:
        return await service.create(NODES, body)


async def sync_node(service: ResourceService, runtime: Runtime) -> str:
    """Create or refresh this machine's Node object from the runtime; return its name."""
    info = await runtime.node()
    status = node_status(info, runtime.name)
    node = await _get_or_create_node(service, info)
    await service.update(NODES, dict(node, status=status), None, info.name, status=True)
    return info.name


NODE_LOST = "NodeLost"


def lost_status(current: dict[str, Any], runtime_name: str) -> dict[str, Any]:
    """Pure: the status of a Node its runtime no longer reports: what it last had, not
    Ready. The Node is kept, not deleted: its pods still name it, and it says what
    happened to them."""
    return dict(
        current,
        conditions=[
            {
                "type": "Ready",
                "status": "False",
                "reason": NODE_LOST,
                "message": f"the {runtime_name} runtime no longer reports this node",
            }
        ],
    )


async def sync_nodes(service: ResourceService, runtime: MultiNode) -> list[str]:
    """Create or refresh one Node per node of a multi-node runtime; mark its Nodes that
    are gone NotReady (reason NodeLost) and unschedulable, so that neither the scheduler
    nor the pod controller places pods there. Return the names of the live ones.

    A lost node that comes back is schedulable again: this sets ``spec.unschedulable``
    on a lost Node and clears it on a Node whose Ready condition says NodeLost, so a
    cordon an operator set on a live Node is left alone. Writes only what changed: it
    runs every few seconds."""
    live = await runtime.nodes()
    names = [info.name for info in live]
    for info in live:
        node = await _get_or_create_node(service, info)
        was_lost = not is_ready(node) and _ready_reason(node) == NODE_LOST
        if was_lost and (node.get("spec") or {}).get("unschedulable"):
            node = await _set_unschedulable(service, node, False)
        await _write_status(service, node, node_status(info, runtime.name))
    for node in (await service.list(NODES)).items:
        status = node.get("status") or {}
        if status.get("runtime") != runtime.name or node["metadata"]["name"] in names:
            continue
        if not (node.get("spec") or {}).get("unschedulable"):
            node = await _set_unschedulable(service, node, True)
        await _write_status(service, node, lost_status(status, runtime.name))
    return names


def _ready_reason(node: Obj) -> str:
    conditions = (node.get("status") or {}).get("conditions") or ()
    return next((str(c.get("reason", "")) for c in conditions if c.get("type") == "Ready"), "")


async def _set_unschedulable(service: ResourceService, node: Obj, value: bool) -> Obj:
    spec = dict(node.get("spec") or {}, unschedulable=value)
    return await service.update(NODES, dict(node, spec=spec), None, node["metadata"]["name"])


async def _write_status(service: ResourceService, node: Obj, status: dict[str, Any]) -> None:
    if (node.get("status") or {}) != status:
        name = node["metadata"]["name"]
        await service.update(NODES, dict(node, status=status), None, name, status=True)


async def runtime_node_names(service: ResourceService, runtime_name: str) -> set[str]:
    """Every Node a runtime reports or reported (lost ones included): the pods a
    multi-node runtime's pod controller looks after are those bound to one of these."""
    items = (await service.list(NODES)).items
    return {
        n["metadata"]["name"]
        for n in items
        if (n.get("status") or {}).get("runtime") == runtime_name
    }
