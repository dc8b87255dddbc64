"""Stored objects to the scheduler's pure inputs: the admission Snapshot and the
placement ClusterSnapshot (DESIGN.md principle 3: the shell reads, the core decides).

Pure functions over typed objects already read from the store. A Workload is
*pending* while it holds no admission and is not finished, *admitted* while it holds
one (an evicting Workload still does, until its pods have stopped).

A Workload shrunk by preemption holds fewer slots than it has active pods until its
surplus pods have stopped: :func:`surplus_pods` finds them, and both snapshots count
them as held (the admission core sees them as an evicting part of the Workload), so
the quota and node room they free are reused only once they are gone.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np
from numpy.typing import NDArray

from cnai.core.kubelet import GPU_ANNOTATION
from cnai.core.pods import Node, Pod
from cnai.core.quantity import parse_quantity
from cnai.scheduling import admission as adm
from cnai.scheduling.api import (
    WORKLOAD_ANNOTATION,
    ClusterQueue,
    LocalQueue,
    PreemptionPolicyName,
    PriorityClass,
    Workload,
    WorkloadConditionType,
    WorkloadPhase,
)
from cnai.scheduling.placement import ClusterSnapshot, NodeSpec, Placement, PodRequest
from cnai.scheduling.placement.request import MILLI

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIB = 1 << 20


def key(wl: Workload) -> str:
    return f"{wl.metadata.namespace}/{wl.metadata.name}"


def is_finished(wl: Workload) -> bool:
    return wl.status.phase.terminal or wl.metadata.deletion_timestamp is not None


def is_admitted(wl: Workload) -> bool:
    return wl.status.admission is not None and not is_finished(wl)


def is_pending(wl: Workload) -> bool:
    return wl.status.admission is None and not is_finished(wl)


def lowered_counts(wl: Workload) -> dict[str, int]:
    """Per pod set, the spec's count where it is below the admitted count (the job asks
    for fewer pods than it holds); empty unless ``wl`` is admitted and not evicting."""
    if not is_admitted(wl) or wl.status.phase is WorkloadPhase.EVICTING:
        return {}
    assert wl.status.admission is not None
    specs = {ps.name: ps.count for ps in wl.spec.pod_sets}
    return {
        a.name: specs[a.name]
        for a in wl.status.admission.pod_set_assignments
        if a.name in specs and specs[a.name] < a.count
    }


def _amount(value: object) -> Decimal:
    return parse_quantity(value)  # type: ignore[arg-type]


def _optional(value: object | None) -> Decimal | None:
    return None if value is None else _amount(value)


# -- admission -----------------------------------------------------------------------


def cluster_queue(cq: ClusterQueue) -> adm.ClusterQueue:
    """A ClusterQueue's quota and policies as the admission core reads them."""
    spec = cq.spec
    groups, quotas = [], {}
    for group in spec.resource_groups:
        groups.append(
            adm.ResourceGroup(tuple(group.covered_resources), tuple(f.name for f in group.flavors))
        )
        for flavor in group.flavors:
            for r in flavor.resources:
                quotas[(flavor.name, r.name)] = adm.Quota(
                    _amount(r.nominal_quota),
                    _optional(r.borrowing_limit),
                    _optional(r.lending_limit),
                )
    p = spec.preemption
    preemption = adm.Preemption(
        adm.WithinQueue(p.within_cluster_queue.value),
        adm.Reclaim(p.reclaim_within_cohort.value),
        p.borrow_within_cohort.policy.value != "Never",
        p.borrow_within_cohort.max_priority_threshold,
    )
    guard = spec.starvation_guard
    return adm.ClusterQueue(
        name=cq.metadata.name,
        groups=tuple(groups),
        quotas=quotas,
        cohort=spec.cohort,
        strategy=adm.QueueingStrategy(spec.queueing_strategy.value),
        preemption=preemption,
        weight=_amount(spec.fair_sharing.weight),
        starvation=adm.StarvationGuard(guard.max_wait_seconds, guard.max_bypasses),
    )


@dataclass(frozen=True)
class Priorities:
    """PriorityClass values by name, and the global default."""

    classes: Mapping[str, PriorityClass]

    @classmethod
    def of(cls, classes: Iterable[PriorityClass]) -> Priorities:
        return cls({pc.metadata.name: pc for pc in classes})

    def _class(self, wl: Workload) -> PriorityClass | None:
        if wl.spec.priority_class_name:
            return self.classes.get(wl.spec.priority_class_name)
        return next((pc for pc in self.classes.values() if pc.global_default), None)

    def value(self, wl: Workload) -> int:
        if wl.spec.priority is not None:
            return wl.spec.priority
        pc = self._class(wl)
        return pc.value if pc is not None else 0

    def can_preempt(self, wl: Workload) -> bool:
        pc = self._class(wl)
        return pc is None or pc.preemption_policy is not PreemptionPolicyName.NEVER


def _requests(requests: Mapping[str, object]) -> dict[str, Decimal]:
    return {r: _amount(v) for r, v in requests.items()}


def _condition_time(wl: Workload, type: WorkloadConditionType) -> datetime | None:
    for c in wl.status.conditions:
        if c.type == type and c.status == "True":
            return c.last_transition_time
    return None


def pending(
    wl: Workload,
    lqs: Mapping[tuple[str, str], LocalQueue],
    cqs: Mapping[str, object],
    pri: Priorities,
) -> adm.PendingWorkload:
    ns = wl.metadata.namespace or ""
    lq = lqs.get((ns, wl.spec.queue_name))
    target = lq.spec.cluster_queue if lq is not None else ""
    return adm.PendingWorkload(
        key=key(wl),
        queue=wl.spec.queue_name,
        cluster_queue=target if target in cqs else "",
        priority=pri.value(wl),
        created=wl.metadata.creation_timestamp or EPOCH,
        pod_sets=tuple(
            adm.PodSet(ps.name, ps.count, _requests(ps.requests), ps.min_count)
            for ps in wl.spec.pod_sets
        ),
        bypassed=wl.status.bypassed,
        can_preempt=pri.can_preempt(wl),
    )


def admitted(wl: Workload, pri: Priorities, grace_seconds: int = 30) -> adm.AdmittedWorkload:
    """``grace_seconds``: the longest SIGTERM-to-SIGKILL wait of its pods."""
    assert wl.status.admission is not None
    specs = {ps.name: ps for ps in wl.spec.pod_sets}
    pod_sets = []
    for a in wl.status.admission.pod_set_assignments:
        ps = specs.get(a.name)
        wanted = ps.count if ps is not None else a.count
        pod_sets.append(
            adm.AdmittedPodSet(
                a.name,
                a.count,
                _requests(ps.requests) if ps is not None else {},
                dict(a.flavors),
                # A minCount raised above what it holds (its job's minParallelism was
                # edited) is no floor to shrink to: it cannot shrink at all.
                min(ps.min_count, a.count) if ps is not None and ps.min_count else None,
                wanted if wanted != a.count else None,
            )
        )
    return adm.AdmittedWorkload(
        key=key(wl),
        cluster_queue=wl.status.admission.cluster_queue,
        priority=pri.value(wl),
        admitted=_condition_time(wl, WorkloadConditionType.ADMITTED) or EPOCH,
        pod_sets=tuple(pod_sets),
        evicting=wl.status.phase is WorkloadPhase.EVICTING,
        grace_seconds=grace_seconds,
    )


def stopping(wl: Workload, surplus: Mapping[str, int], pri: Priorities) -> adm.AdmittedWorkload:
    """The surplus pods of a shrunk Workload as an evicting part of it: their quota is
    held until they have stopped, and is promised to the preemptor meanwhile."""
    assert wl.status.admission is not None
    specs = {ps.name: ps for ps in wl.spec.pod_sets}
    flavors = {a.name: dict(a.flavors) for a in wl.status.admission.pod_set_assignments}
    return adm.AdmittedWorkload(
        key=f"{key(wl)}#stopping",
        cluster_queue=wl.status.admission.cluster_queue,
        priority=pri.value(wl),
        admitted=_condition_time(wl, WorkloadConditionType.ADMITTED) or EPOCH,
        pod_sets=tuple(
            adm.AdmittedPodSet(
                name,
                n,
                _requests(specs[name].requests) if name in specs else {},
                flavors.get(name, {}),
            )
            for name, n in surplus.items()
        ),
        evicting=True,
    )


def admission_snapshot(
    cqs: Sequence[ClusterQueue],
    lqs: Sequence[LocalQueue],
    classes: Sequence[PriorityClass],
    workloads: Sequence[Workload],
    inadmissible: Mapping[str, adm.Inadmissible] | None = None,
    surplus: Mapping[str, Mapping[str, int]] | None = None,
    grace: Mapping[str, int] | None = None,
) -> adm.Snapshot:
    """The admission core's input for one pass. ``inadmissible``: the previous pass's
    ``Decisions.inadmissible`` (workloads it need not try again while nothing changed).
    ``surplus``: per Workload key, the pods per pod set still stopping after a shrink
    (:func:`surplus_counts`). ``grace``: per Workload key, the longest termination grace
    period of its running pods (:func:`grace_periods`; 30 s, the pod default, if none)."""
    queues = {cq.metadata.name: cluster_queue(cq) for cq in cqs}
    by_key = {(lq.metadata.namespace or "", lq.metadata.name): lq for lq in lqs}
    pri = Priorities.of(classes)
    surplus = surplus or {}
    grace = grace or {}
    held = [admitted(w, pri, grace.get(key(w), 30)) for w in workloads if is_admitted(w)]
    held += [
        stopping(w, surplus[key(w)], pri)
        for w in workloads
        if is_admitted(w) and surplus.get(key(w))
    ]
    return adm.Snapshot(
        cluster_queues=queues,
        admitted=tuple(held),
        pending=tuple(pending(w, by_key, queues, pri) for w in workloads if is_pending(w)),
        inadmissible=inadmissible or {},
    )


def grace_periods(pods: Iterable[Pod]) -> dict[str, int]:
    """Per Workload key, the longest ``terminationGracePeriodSeconds`` of its running
    pods: how long its preemption takes at most (SIGTERM, then SIGKILL)."""
    out: dict[str, int] = {}
    for pod in pods:
        name = pod.metadata.annotations.get(WORKLOAD_ANNOTATION)
        if name and not pod.status.phase.terminal:
            k = f"{pod.metadata.namespace}/{name}"
            out[k] = max(out.get(k, 0), pod.spec.termination_grace_period_seconds)
    return out


# -- placement -----------------------------------------------------------------------


def pod_request(requests: Mapping[str, object]) -> PodRequest:
    """One pod's requests in placement units (milli-cpu, MiB, whole or shared GPUs)."""
    values = _requests(requests)
    cpu = math.ceil(values.get("cpu", Decimal(0)) * 1000)
    memory = math.ceil(values.get("memory", Decimal(0)) / MIB)
    gpu = values.get("gpu", Decimal(0))
    if gpu <= 0:
        return PodRequest(cpu, memory)
    if gpu < 1:
        return PodRequest(cpu, memory, 1, math.ceil(gpu * MILLI))
    return PodRequest(cpu, memory, math.ceil(gpu), MILLI)


def node_spec(node: Node) -> NodeSpec:
    alloc = node.status.allocatable
    gpus = len(node.status.gpus) or int(_amount(alloc.get("gpu", "0")))
    model = node.status.gpus[0].name if node.status.gpus else ""
    return NodeSpec(
        node.metadata.name,
        int(_amount(alloc.get("cpu", "0")) * 1000),
        int(_amount(alloc.get("memory", "0")) / MIB),
        gpus,
        model,
    )


def _gpus_of(pod: Pod) -> tuple[int, ...]:
    text = pod.metadata.annotations.get(GPU_ANNOTATION, "")
    return tuple(int(i) for i in text.split(",") if i.strip().isdigit())


def slot_of(pod: Pod) -> tuple[str, tuple[int, ...]]:
    return pod.spec.node_name, _gpus_of(pod)


def pod_order(pod: Pod) -> tuple[datetime, int, str]:
    """Oldest first: creation time, then the number a name ends in (``job-3``), then name."""
    _, _, tail = pod.metadata.name.rpartition("-")
    number = int(tail) if tail.isdigit() else -1
    return pod.metadata.creation_timestamp or EPOCH, number, pod.metadata.name


def surplus_pods(wl: Workload, active: Iterable[Pod]) -> list[Pod]:
    """Active pods of ``wl`` that hold no slot of its placement (a shrunk Workload's pods
    still stopping); the oldest pods take the slots first. None while it is not admitted."""
    if wl.status.admission is None:
        return []
    slots = Counter(
        (p.node_name, tuple(p.gpus))
        for a in wl.status.admission.pod_set_assignments
        for p in a.placements
    )
    out = []
    for pod in sorted(active, key=pod_order):
        slot = slot_of(pod)
        if slots[slot] > 0:
            slots[slot] -= 1
        else:
            out.append(pod)
    return out


def surplus_counts(wl: Workload, pods: Iterable[Pod]) -> dict[str, int]:
    """:func:`surplus_pods` counted per pod set (by their requests; else the first set)."""
    if wl.status.admission is None or not wl.status.admission.pod_set_assignments:
        return {}
    names = [a.name for a in wl.status.admission.pod_set_assignments]
    specs = {ps.name: _requests(ps.requests) for ps in wl.spec.pod_sets if ps.name in names}
    out: dict[str, int] = {}
    for pod in pods:
        asks = _requests(pod.spec.resources.requests)
        name = next((n for n, r in specs.items() if r == asks), names[0])
        out[name] = out.get(name, 0) + 1
    return out


def _hold(snap: ClusterSnapshot, node: str, req: PodRequest, gpus: Sequence[int]) -> None:
    if node not in snap.names:
        return
    held = tuple(g for g in gpus if g < snap.gpu_free.shape[1])
    milli = req.gpu_milli if held else 0
    snap.bind_in_place(
        PodRequest(req.cpu_milli, req.memory_mib, len(held), milli),
        Placement(snap.names.index(node), held, milli),
    )


def cluster_snapshot(
    nodes: Sequence[Node],
    workloads: Sequence[Workload],
    pods: Sequence[Pod],
    surplus: Iterable[Pod] = (),
) -> ClusterSnapshot:
    """Free capacity per node: allocatable minus the placements of admitted Workloads,
    the requests of bound standalone pods (pods of a Workload are in its placement) and
    those of ``surplus`` pods (a shrunk Workload's pods still stopping)."""
    usable = [n for n in nodes if not n.spec.unschedulable]
    snap = ClusterSnapshot.from_nodes([node_spec(n) for n in usable])
    for wl in workloads:
        if not is_admitted(wl) or wl.status.admission is None:
            continue
        specs = {ps.name: ps for ps in wl.spec.pod_sets}
        for a in wl.status.admission.pod_set_assignments:
            req = pod_request(specs[a.name].requests if a.name in specs else {})
            for p in a.placements:
                _hold(snap, p.node_name, req, p.gpus)
    for pod in pods:
        if WORKLOAD_ANNOTATION in pod.metadata.annotations or not pod.spec.node_name:
            continue
        if pod.status.phase.terminal:
            continue
        _hold(snap, pod.spec.node_name, pod_request(pod.spec.resources.requests), _gpus_of(pod))
    for pod in surplus:
        if pod.spec.node_name:
            _hold(snap, pod.spec.node_name, pod_request(pod.spec.resources.requests), _gpus_of(pod))
    return snap


def node_mask(
    snap: ClusterSnapshot, nodes: Sequence[Node], labels: Mapping[str, str]
) -> NDArray[np.bool_] | None:
    """The snapshot's nodes whose labels include every ``labels`` pair (None: no limit)."""
    if not labels:
        return None
    by_name = {n.metadata.name: n.metadata.labels for n in nodes}
    return np.array(
        [all(by_name.get(name, {}).get(k) == v for k, v in labels.items()) for name in snap.names],
        dtype=np.bool_,
    )


def queue_position(
    target: Workload, workloads: Iterable[Workload], classes: Iterable[PriorityClass]
) -> int | None:
    """``target``'s 1-based position among the pending workloads of its LocalQueue, as
    the scheduler orders them now (higher priority first, then first come), or None when
    it is not pending.

    Computed when asked (``cnai describe workload``), not written by every scheduling
    cycle: it moves with each admission ahead of it, so writing it would rewrite every
    pending Workload on every cycle (Kueue answers it on demand too, from its visibility
    API)."""
    if target.status.phase is not WorkloadPhase.PENDING:
        return None
    pri = Priorities.of(classes)
    ns, queue = target.metadata.namespace or "", target.spec.queue_name

    def order(wl: Workload) -> tuple[int, datetime, str]:
        return (-pri.value(wl), wl.metadata.creation_timestamp or EPOCH, key(wl))

    mine = order(target)
    ahead = sum(
        1
        for wl in workloads
        if wl.status.phase is WorkloadPhase.PENDING
        and (wl.metadata.namespace or "") == ns
        and wl.spec.queue_name == queue
        and order(wl) < mine
    )
    return ahead + 1
