"""Scheduling capability: queues, admission, and placement of pods onto nodes and GPUs.

Placement (``cnai.scheduling.placement``) and the trace-driven simulator
(``cnai.scheduling.simulator``) are pure functions over snapshots (DESIGN.md principle 3):
the simulator replays real traces through the same placement code that production uses.
"""

# --- Kinds and registration (queues, quota, admission) ---------------------------------
# ``register(platform)`` hands the five scheduling kinds, with their printer columns and
# admission rules, and the scheduler controller (``cnai.scheduling.controller``, the shell
# that writes admission and placement into Workload status) to the platform. The
# scheduler's pure admission core is ``cnai.scheduling.admission``
# (``schedule(snapshot, now) -> Decisions``).

from typing import Any as _Any
from typing import Protocol as _Protocol

from cnai.core.registry import Column, KindInfo, Registry
from cnai.scheduling.api import (
    ClusterQueue,
    LocalQueue,
    PriorityClass,
    ResourceFlavor,
    Workload,
)
from cnai.scheduling.validation import (
    cluster_queue_rules,
    local_queue_rules,
    priority_class_rules,
    resource_flavor_rules,
    workload_rules,
)

SCHEDULING_KINDS = (
    KindInfo(
        ResourceFlavor,
        columns=(Column("NODE LABELS", "spec.nodeLabels"),),
        validators=(resource_flavor_rules,),
        has_status=False,
    ),
    KindInfo(
        ClusterQueue,
        columns=(
            Column("COHORT", "spec.cohort"),
            Column("USED/NOMINAL", "status.usageText"),
            Column("PENDING", "status.pendingWorkloads"),
            Column("ADMITTED", "status.admittedWorkloads"),
            Column("STRATEGY", "spec.queueingStrategy", wide=True),
        ),
        validators=(cluster_queue_rules,),
    ),
    KindInfo(
        LocalQueue,
        columns=(
            Column("CLUSTERQUEUE", "spec.clusterQueue"),
            Column("PENDING", "status.pendingWorkloads"),
            Column("ADMITTED", "status.admittedWorkloads"),
        ),
        validators=(local_queue_rules,),
    ),
    KindInfo(
        PriorityClass,
        columns=(
            Column("VALUE", "value"),
            Column("GLOBAL-DEFAULT", "globalDefault"),
            Column("PREEMPTION", "preemptionPolicy", wide=True),
        ),
        validators=(priority_class_rules,),
        has_status=False,
    ),
    KindInfo(
        Workload,
        columns=(
            Column("QUEUE", "spec.queueName"),
            Column("PHASE", "status.phase"),
            Column("ADMITTED BY", "status.admission.clusterQueue"),
            Column("REASON", "status.reason"),
            Column("MESSAGE", "status.message", wide=True),
        ),
        validators=(workload_rules,),
    ),
)


class _Platform(_Protocol):
    """What registration needs of the platform (typed here so scheduling need not import it)."""

    registry: Registry


def register_kinds(registry: Registry) -> None:
    """Register the five scheduling kinds in ``registry``."""
    for info in SCHEDULING_KINDS:
        registry.register(info)


def register(platform: _Platform) -> None:
    """Register the scheduling kinds and, where the platform runs controllers, the
    scheduler (``cnai.scheduling.controller``)."""
    from cnai.scheduling.controller import scheduler_controller

    register_kinds(platform.registry)
    factories: list[_Any] | None = getattr(platform, "controller_factories", None)
    if factories is not None:
        factories.append(scheduler_controller)
