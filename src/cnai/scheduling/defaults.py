"""Default queues, so a user who never writes a queue still gets correct behaviour.

At first start (the first scheduling pass that sees a Node) the scheduler creates the
ResourceFlavor ``default`` and, if no ClusterQueue exists, the ClusterQueue ``default``
whose nominal quota is the Nodes' allocatable cpu, memory and gpu, with preemption of
lower priorities inside it. The flavor marks the bootstrap as done: a user who deletes
the default ClusterQueue does not see it come back. Every namespace gets a LocalQueue
``default`` pointing at ClusterQueue ``default`` (created when missing).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from decimal import Decimal

from cnai.core.errors import AlreadyExists, ApiError, NotFound
from cnai.core.kinds import Namespace
from cnai.core.meta import ObjectMeta
from cnai.core.pods import Node
from cnai.core.quantity import format_bytes, parse_quantity
from cnai.core.resources import ResourceService
from cnai.scheduling.api import (
    ClusterQueue,
    ClusterQueuePreemption,
    ClusterQueueSpec,
    FlavorQuotas,
    LocalQueue,
    LocalQueueSpec,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    WithinClusterQueuePolicy,
)

log = logging.getLogger(__name__)

DEFAULT = "default"  # the default flavor, ClusterQueue and LocalQueue names
RESOURCES = ("cpu", "memory", "gpu")


def _total(nodes: Sequence[Node], resource: str) -> Decimal:
    return sum((parse_quantity(n.status.allocatable.get(resource, "0")) for n in nodes), Decimal(0))


def _text(resource: str, value: Decimal) -> str:
    if resource == "memory":
        return format_bytes(int(value))
    return str(value.normalize()) if value != value.to_integral_value() else str(int(value))


def default_cluster_queue(nodes: Sequence[Node]) -> ClusterQueue:
    """ClusterQueue ``default``: all of the Nodes' allocatable, lower priorities preemptible."""
    quotas = [ResourceQuota(name=r, nominal_quota=_text(r, _total(nodes, r))) for r in RESOURCES]
    return ClusterQueue(
        metadata=ObjectMeta(name=DEFAULT),
        spec=ClusterQueueSpec(
            resource_groups=[
                ResourceGroup(
                    covered_resources=list(RESOURCES),
                    flavors=[FlavorQuotas(name=DEFAULT, resources=quotas)],
                )
            ],
            preemption=ClusterQueuePreemption(
                within_cluster_queue=WithinClusterQueuePolicy.LOWER_PRIORITY
            ),
        ),
    )


def default_local_queue(namespace: str) -> LocalQueue:
    return LocalQueue(
        metadata=ObjectMeta(name=DEFAULT, namespace=namespace),
        spec=LocalQueueSpec(cluster_queue=DEFAULT),
    )


async def ensure_cluster_queue(service: ResourceService, nodes: Sequence[Node]) -> bool:
    """Create the default flavor and ClusterQueue once; True when the bootstrap is done."""
    try:
        await service.get("resourceflavors", None, DEFAULT)
        return True
    except NotFound:
        pass
    if not nodes:
        return False  # sized from the Nodes: wait for the runtime to report one
    if not (await service.list("clusterqueues")).items:
        with contextlib.suppress(AlreadyExists):
            await service.create("clusterqueues", default_cluster_queue(nodes).to_dict())
            log.info("created the default ClusterQueue from %d node(s)", len(nodes))
    flavor = ResourceFlavor(metadata=ObjectMeta(name=DEFAULT))
    with contextlib.suppress(AlreadyExists):
        await service.create("resourceflavors", flavor.to_dict())
    return True


async def ensure_local_queues(
    service: ResourceService, namespaces: Sequence[Namespace], have: set[str]
) -> None:
    """Create LocalQueue ``default`` in each active namespace not in ``have``."""
    for ns in namespaces:
        name = ns.metadata.name
        if name in have or ns.metadata.deletion_timestamp is not None:
            continue
        try:
            await service.create("localqueues", default_local_queue(name).to_dict(), name)
        except AlreadyExists:
            pass
        except ApiError as exc:  # e.g. the namespace began terminating meanwhile
            log.info("no default LocalQueue in namespace %s: %s", name, exc.message)
