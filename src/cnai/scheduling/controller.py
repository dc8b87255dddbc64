"""The scheduler's shell: one scheduling pass reads the store, decides, and writes status.

Every change to a Workload, queue, PriorityClass, ResourceFlavor, Node, Pod or
Namespace maps to one fixed key, so changes that arrive together coalesce into one
pass; a periodic requeue covers time-based rules (starvation). One pass, as numbered phases:

1. Bootstrap: the default flavor and ClusterQueue (once, sized from the Nodes) and a
   LocalQueue ``default`` in every namespace (see :mod:`.defaults`).
2. Requeue evicted Workloads whose pods have all stopped: their quota is free again.
   Trim admitted Workloads whose spec now asks for fewer pods than they hold (their
   job's parallelism was lowered) to the spec's count (never below minCount, which
   validation keeps at most count): their job stops the surplus pods, highest-numbered
   first, and their quota and node room are free once those are gone, as after a
   shrink by preemption.
3. Decide: ``schedule(snapshot, now)`` over the stored queues and Workloads (pure).
4. Admit: place each admitted Workload's pods onto nodes and GPUs as a gang with ``place_gang()``
   over the Nodes' free capacity, only on Nodes that carry the node labels of the
   flavors it was given; one that fits no node keeps waiting.
5. Grow admitted elastic Workloads (partial admission) where quota and nodes allow.
6. Preempt: mark victims evicted; their job stops their pods (SIGTERM, then SIGKILL
   after the grace period), and phase 2 of a later pass requeues them. An elastic
   victim the core shrinks keeps its admission with fewer pods and placements; its job
   stops the surplus pods, whose quota and node room stay held until they are gone.
7. Write why each Workload the pass decided waits, and each queue's usage and lengths.
   A Workload the pass skipped as still inadmissible keeps the status it has (its
   message is as of its last try). Queue positions are not written: they move with
   every admission ahead, so ``cnai describe workload`` computes them when asked
   (:func:`.snapshots.queue_position`).

Writes happen only when a status changed. The job that owns a Workload creates its pods
once it is admitted, on the nodes of its placement.

Hand-off (``handoff="kueue"``, operator mode with ``--admission kueue``): the cluster's
Kueue owns queues and quota, so a pass admits every pending Workload at once, without
cnai's quota, onto the runtime's node; its pods are rendered for Kueue, which gates them
until it admits the group.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from cnai.core.clock import Clock
from cnai.core.controllers.types import ControllerContext, ControllerSpec, Request, Result
from cnai.core.errors import Conflict, NotFound
from cnai.core.events import EventRecorder
from cnai.core.kinds import EventType, Namespace
from cnai.core.metrics import metrics_registry
from cnai.core.pods import Node, Pod
from cnai.core.resources import ResourceService
from cnai.core.store.protocol import Obj
from cnai.scheduling import defaults, snapshots, transitions
from cnai.scheduling.admission import Admit, Decisions, Inadmissible, QueueUsage, schedule
from cnai.scheduling.admission.flavors import PodSetFit
from cnai.scheduling.admission.reasons import amount
from cnai.scheduling.api import (
    WORKLOAD_ANNOTATION,
    ClusterQueue,
    ClusterQueueStatus,
    FlavorUsage,
    LocalQueue,
    PodPlacement,
    PriorityClass,
    ResourceFlavor,
    ResourceUsage,
    Workload,
    WorkloadPhase,
    WorkloadStatus,
)
from cnai.scheduling.metrics import SchedulerMetrics
from cnai.scheduling.placement import ClusterSnapshot, Policy, make_policy, place_gang

log = logging.getLogger("cnai.scheduling")

COMPONENT = "scheduler"
SCHEDULER_KEY = Request(None, "scheduler")
PERIOD_S = 1.0  # time-based rules (starvation) are looked at this often
RETRY_S = 0.1  # after a write lost to a concurrent one
PLACEMENT_POLICY = "best-fit"
WATCHED = (
    "workloads",
    "localqueues",
    "priorityclasses",
    "nodes",
    "pods",
    "namespaces",
    "resourceflavors",
)


@dataclass
class _World:
    """What one pass read, and the Workloads as this pass leaves them."""

    nodes: list[Node]
    cqs: list[ClusterQueue]
    lqs: list[LocalQueue]
    classes: list[PriorityClass]
    workloads: dict[str, Workload]
    pods: list[Pod]
    flavors: dict[str, ResourceFlavor] = field(default_factory=dict)
    stored: dict[str, WorkloadStatus] = field(default_factory=dict)

    def active_pods(self, wl: Workload) -> list[Pod]:
        return [
            p
            for p in self.pods
            if p.metadata.namespace == wl.metadata.namespace
            and p.metadata.annotations.get(WORKLOAD_ANNOTATION) == wl.metadata.name
            and not p.status.phase.terminal
        ]

    def surplus(self) -> dict[str, list[Pod]]:
        """Per admitted Workload, its pods still stopping after a shrink."""
        out = {}
        for k, wl in self.workloads.items():
            if snapshots.is_admitted(wl) and wl.status.phase is not WorkloadPhase.EVICTING:
                extra = snapshots.surplus_pods(wl, self.active_pods(wl))
                if extra:
                    out[k] = extra
        return out

    def node_labels(self, flavors: Mapping[str, str]) -> dict[str, str]:
        """The node labels the given flavors (resource -> flavor) require together."""
        labels: dict[str, str] = {}
        for name in sorted(set(flavors.values())):
            rf = self.flavors.get(name)
            if rf is not None:
                labels.update(rf.spec.node_labels)
        return labels


class SchedulerReconciler:
    """Runs one scheduling pass per reconcile, whatever the key (see the module docstring)."""

    def __init__(
        self,
        service: ResourceService,
        clock: Clock,
        recorder: EventRecorder,
        policy: str = PLACEMENT_POLICY,
        metrics: SchedulerMetrics | None = None,
        handoff: str = "",
    ) -> None:
        self.service = service
        self.metrics = metrics
        self.handoff = handoff
        self.clock = clock
        self.recorder = recorder
        self.policy: Policy = make_policy(policy)
        self._bootstrapped = False
        self._retry = False
        # The last pass's inadmissible set: the next pass skips those workloads while
        # their cohort's quota and usage give the same answer (see admission.schedule).
        self._inadmissible: Mapping[str, Inadmissible] = {}

    async def reconcile(self, request: Request) -> Result:
        self._retry = False
        world = await self._read()
        now = self.clock.now().replace(microsecond=0)
        if self.handoff:
            await self._hand_off(world, now)
            return Result(requeue_after=RETRY_S if self._retry else None)
        # 2. Requeue evicted Workloads whose pods have stopped; trim those asking for fewer.
        for wl in list(world.workloads.values()):
            if wl.status.phase is WorkloadPhase.EVICTING and not world.active_pods(wl):
                await self._write(world, wl, transitions.requeued(wl.status, now), "Requeued")
            elif lowered := snapshots.lowered_counts(wl):
                await self._trim(world, wl, lowered)
        # 3. Decide.
        workloads = list(world.workloads.values())
        surplus = world.surplus()
        counts = {k: snapshots.surplus_counts(world.workloads[k], p) for k, p in surplus.items()}
        decisions = schedule(
            snapshots.admission_snapshot(
                world.cqs,
                world.lqs,
                world.classes,
                workloads,
                self._inadmissible,
                counts,
                snapshots.grace_periods(world.pods),
            ),
            now,
        )
        self._inadmissible = decisions.inadmissible
        # 4-6. Admit with placements, grow, preempt.
        stopping = [pod for pods in surplus.values() for pod in pods]
        nodes = snapshots.cluster_snapshot(world.nodes, workloads, world.pods, stopping)
        for admit in decisions.admit:
            nodes = await self._admit(world, admit, nodes, now)
        for resize in decisions.resize:
            nodes = await self._resize(world, resize.workload, resize.counts, nodes)
        for preempt in decisions.preempt:
            wl = world.workloads[preempt.victim]
            if preempt.shrink_to is not None and wl.status.admission is not None:
                kept = _kept(wl, world.active_pods(wl), preempt.shrink_to)
                status = transitions.shrunk(wl.status, preempt, kept, now)
                text = transitions.shrink_text(preempt)
                if await self._write(world, wl, status, "Shrunk", text) and self.metrics:
                    self.metrics.preempted(preempt.cluster_queue, preempt.reason.value)
                continue
            evicted = transitions.evicted(wl.status, preempt, now)
            if await self._write(world, wl, evicted, "Preempted") and self.metrics:
                self.metrics.preempted(preempt.cluster_queue, preempt.reason.value)
        # 7. Why the rest wait; queue status.
        for wait in decisions.wait:
            wl = world.workloads[wait.workload]
            if wl.status.admission is None:
                written = await self._write(world, wl, transitions.waiting(wl.status, wait))
                if not written and wait.workload in self._inadmissible:
                    # A skipped workload keeps the status it has: one whose status
                    # could not be written is decided again next pass, not skipped.
                    self._inadmissible = {
                        k: v for k, v in self._inadmissible.items() if k != wait.workload
                    }
        await self._queue_status(world, decisions)
        if self._retry:
            return Result(requeue_after=RETRY_S)
        return Result(requeue_after=PERIOD_S if request == SCHEDULER_KEY else None)

    # -- reading ---------------------------------------------------------------------

    async def _list(self, plural: str) -> list[Obj]:
        return (await self.service.list(plural)).items

    async def _read(self) -> _World:
        nodes = [Node.model_validate(o) for o in await self._list("nodes")]
        # 1. Bootstrap the default queues.
        if not self._bootstrapped:
            self._bootstrapped = await defaults.ensure_cluster_queue(self.service, nodes)
        namespaces = [Namespace.model_validate(o) for o in await self._list("namespaces")]
        lqs = [LocalQueue.model_validate(o) for o in await self._list("localqueues")]
        have = {lq.metadata.namespace or "" for lq in lqs if lq.metadata.name == defaults.DEFAULT}
        if any(ns.metadata.name not in have for ns in namespaces):
            await defaults.ensure_local_queues(self.service, namespaces, have)
            lqs = [LocalQueue.model_validate(o) for o in await self._list("localqueues")]
        workloads = [Workload.model_validate(o) for o in await self._list("workloads")]
        return _World(
            nodes=nodes,
            cqs=[ClusterQueue.model_validate(o) for o in await self._list("clusterqueues")],
            lqs=lqs,
            classes=[PriorityClass.model_validate(o) for o in await self._list("priorityclasses")],
            workloads={snapshots.key(w): w for w in workloads},
            pods=[Pod.model_validate(o) for o in await self._list("pods")],
            flavors={
                rf.metadata.name: rf
                for rf in (
                    ResourceFlavor.model_validate(o) for o in await self._list("resourceflavors")
                )
            },
        )

    # -- phases ----------------------------------------------------------------------

    def _place(
        self,
        world: _World,
        nodes: ClusterSnapshot,
        wl: Workload,
        counts: dict[str, int],
        labels: Mapping[str, str],
    ) -> tuple[ClusterSnapshot, dict[str, list[PodPlacement]]] | None:
        """Place ``counts`` more pods per pod set as one gang (all or none, on the fewest
        nodes: ``place_gang``) on the nodes carrying ``labels``, or None if the gang
        does not fit now."""
        specs = {ps.name: ps for ps in wl.spec.pod_sets}
        gang = [
            (name, snapshots.pod_request(specs[name].requests if name in specs else {}))
            for name, count in counts.items()
            for _ in range(count)
        ]
        allowed = snapshots.node_mask(nodes, world.nodes, labels)
        found = place_gang(nodes, [request for _, request in gang], self.policy, allowed=allowed)
        if found is None:
            return None
        out: dict[str, list[PodPlacement]] = {}
        nodes = nodes.copy()
        for (name, request), at in zip(gang, found, strict=True):
            nodes.bind_in_place(request, at)
            node = nodes.names[at.node]
            out.setdefault(name, []).append(PodPlacement(node_name=node, gpus=list(at.gpus)))
        return nodes, out

    async def _admit(
        self, world: _World, admit: Admit, nodes: ClusterSnapshot, now: datetime
    ) -> ClusterSnapshot:
        wl = world.workloads[admit.workload]
        labels = world.node_labels({r: f for p in admit.pod_sets for r, f in p.flavors.items()})
        placed = self._place(world, nodes, wl, {p.name: p.count for p in admit.pod_sets}, labels)
        if placed is None:
            pods = sum(p.count for p in admit.pod_sets)
            which = "no node"
            if labels:
                which += " with labels " + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            message = (
                f"fits the quota of clusterqueue {admit.cluster_queue}, but {which} has room "
                f"for its {pods} pod(s) now"
            )
            await self._write(world, wl, transitions.unplaceable(wl.status, message))
            return nodes
        nodes, placements = placed
        admitted = transitions.admitted(wl.status, admit, placements, now)
        if await self._write(world, wl, admitted, "Admitted") and self.metrics:
            self.metrics.admitted(wl, admit.cluster_queue, now)
        return nodes

    async def _hand_off(self, world: _World, now: datetime) -> None:
        """Admit every pending Workload for the external admission to decide on."""
        ready = [n for n in world.nodes if not n.spec.unschedulable]
        if not ready:
            return
        node = ready[0].metadata.name
        for key, wl in world.workloads.items():
            if wl.status.admission is not None or wl.status.phase is WorkloadPhase.EVICTING:
                continue
            sets = tuple(PodSetFit(ps.name, ps.count, {}, {}) for ps in wl.spec.pod_sets)
            admit = Admit(key, self.handoff, sets)
            placements = {
                ps.name: [PodPlacement(node_name=node) for _ in range(ps.count)] for ps in sets
            }
            status = transitions.admitted(wl.status, admit, placements, now)
            await self._write(world, wl, status, "Admitted", f"handed to {self.handoff}")

    async def _resize(
        self, world: _World, key: str, counts: Mapping[str, int], nodes: ClusterSnapshot
    ) -> ClusterSnapshot:
        wl = world.workloads[key]
        if wl.status.admission is None:
            return nodes
        have = {a.name: a.count for a in wl.status.admission.pod_set_assignments}
        extra = {name: n - have.get(name, 0) for name, n in counts.items() if n > have.get(name, 0)}
        flavors = {
            r: f for a in wl.status.admission.pod_set_assignments for r, f in a.flavors.items()
        }
        placed = self._place(world, nodes, wl, extra, world.node_labels(flavors))
        if placed is None:
            return nodes
        nodes, more = placed
        await self._write(world, wl, transitions.resized(wl.status, counts, more), "Resized")
        return nodes

    async def _trim(self, world: _World, wl: Workload, counts: Mapping[str, int]) -> None:
        """Down to the spec's lowered ``counts``, keeping the oldest pods' placements."""
        kept = _kept(wl, world.active_pods(wl), counts)
        status = transitions.trimmed(wl.status, counts, kept)
        await self._write(world, wl, status, "Resized", transitions.trim_text(status))

    async def _queue_status(self, world: _World, decisions: Decisions) -> None:
        final = list(world.workloads.values())
        for cq in world.cqs:
            usage = decisions.usage.get(cq.metadata.name)
            if usage is None:
                continue
            status = _cq_status(cq, usage, final, world.lqs)
            if status != cq.status:
                await self._write_status("clusterqueues", cq, status)
        for lq in world.lqs:
            mine = [
                w
                for w in final
                if w.metadata.namespace == lq.metadata.namespace
                and w.spec.queue_name == lq.metadata.name
            ]
            lq_status = lq.status.model_copy(
                update={
                    "pending_workloads": sum(snapshots.is_pending(w) for w in mine),
                    "admitted_workloads": sum(snapshots.is_admitted(w) for w in mine),
                }
            )
            if lq_status != lq.status:
                await self._write_status("localqueues", lq, lq_status)

    # -- writing ---------------------------------------------------------------------

    async def _write(
        self, world: _World, wl: Workload, status: WorkloadStatus, event: str = "", text: str = ""
    ) -> bool:
        """Write ``status`` if it changed; False when the write failed (retried later)."""
        if status == wl.status:
            return True
        body = wl.model_copy(update={"status": status}).to_dict()
        ns, name = wl.metadata.namespace, wl.metadata.name
        try:
            written = await self.service.update("workloads", body, ns, name, status=True)
        except (Conflict, NotFound):
            self._retry = True
            return False
        updated = Workload.model_validate(written)
        world.workloads[snapshots.key(updated)] = updated
        if event:
            kind = EventType.WARNING if event in ("Preempted", "Shrunk") else EventType.NORMAL
            await self.recorder.record(
                updated, kind, event, text or status.message or _admitted_text(status)
            )
        return True

    async def _write_status(self, plural: str, obj: ClusterQueue | LocalQueue, status: Any) -> None:
        body = obj.model_copy(update={"status": status}).to_dict()
        try:
            await self.service.update(
                plural, body, obj.metadata.namespace, obj.metadata.name, status=True
            )
        except (Conflict, NotFound):
            self._retry = True


def _kept(
    wl: Workload, active: Sequence[Pod], counts: Mapping[str, int]
) -> dict[str, list[PodPlacement]]:
    """The placements a shrunk Workload keeps per pod set: those of its oldest active pods
    (so its job stops the newest, highest-numbered ones), then its first free ones."""
    assert wl.status.admission is not None
    held = [snapshots.slot_of(p) for p in sorted(active, key=snapshots.pod_order)]
    out: dict[str, list[PodPlacement]] = {}
    for a in wl.status.admission.pod_set_assignments:
        n = counts.get(a.name, a.count)
        free = list(a.placements)
        keep: list[PodPlacement] = []
        for slot in list(held):
            at = next((i for i, p in enumerate(free) if (p.node_name, tuple(p.gpus)) == slot), None)
            if at is None or len(keep) >= n:
                continue
            keep.append(free.pop(at))
            held.remove(slot)
        keep += free[: n - len(keep)]
        out[a.name] = keep
    return out


def _admitted_text(status: WorkloadStatus) -> str:
    if status.admission is None:
        return ""
    counts = ", ".join(f"{a.count} {a.name}" for a in status.admission.pod_set_assignments)
    nodes = sorted(
        {p.node_name for a in status.admission.pod_set_assignments for p in a.placements}
    )
    where = f" on {', '.join(nodes)}" if nodes else ""
    return f"admitted by clusterqueue {status.admission.cluster_queue}: {counts} pod(s){where}"


def _cq_status(
    cq: ClusterQueue, usage: QueueUsage, workloads: Sequence[Workload], lqs: Sequence[LocalQueue]
) -> ClusterQueueStatus:
    """``cnai get clusterqueues``: nominal, borrowed, used and pending per resource."""
    flavors: dict[str, FlavorUsage] = {}
    for line in usage.lines:
        fu = flavors.setdefault(line.flavor, FlavorUsage(name=line.flavor))
        fu.resources.append(
            ResourceUsage(
                name=line.resource,
                nominal=amount(line.resource, line.nominal),
                borrowed=amount(line.resource, line.borrowed),
                used=amount(line.resource, line.used),
                pending=amount(line.resource, usage.pending.get(line.resource, Decimal(0))),
            )
        )
    targets = {
        (lq.metadata.namespace, lq.metadata.name)
        for lq in lqs
        if lq.spec.cluster_queue == cq.metadata.name
    }
    name = cq.metadata.name
    mine = [w for w in workloads if (w.metadata.namespace, w.spec.queue_name) in targets]
    admitted = [
        w
        for w in workloads
        if snapshots.is_admitted(w)
        and w.status.admission is not None
        and w.status.admission.cluster_queue == name
    ]
    return cq.status.model_copy(
        update={
            "flavors_usage": list(flavors.values()),
            "usage_text": usage.text,
            "pending_workloads": sum(snapshots.is_pending(w) for w in mine),
            "admitted_workloads": len(admitted),
        }
    )


# The external admission the platform hands Workloads to (services key; "" for none).
HANDOFF_SERVICE = "scheduling.handoff"


def _to_scheduler(_: Obj) -> list[Request]:
    return [SCHEDULER_KEY]


def scheduler_controller(ctx: ControllerContext) -> ControllerSpec:
    """The ControllerFactory of the scheduler (its primary kind is ClusterQueue; every
    watched change runs the same pass)."""
    reconciler = SchedulerReconciler(
        ctx.service,
        ctx.clock,
        ctx.recorder(COMPONENT),
        metrics=SchedulerMetrics(metrics_registry(ctx.services)),
        handoff=str(ctx.services.get(HANDOFF_SERVICE, "")),
    )
    return ControllerSpec(
        name=COMPONENT,
        kind="clusterqueues",
        reconciler=reconciler,
        watches=tuple((plural, _to_scheduler) for plural in WATCHED),
    )
