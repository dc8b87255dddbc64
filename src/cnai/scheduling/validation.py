"""API admission rules (validators) of the scheduling kinds.

These run in the API server's admission chain before an object is stored (they are not
part of the pure scheduling core next to them). Each rule names the field path it
checks, e.g. ``spec.resourceGroups[0].flavors[0].resources[1].nominalQuota``.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from cnai.core.errors import FieldError
from cnai.core.meta import dns1123_label_error, label_key_error, label_value_error
from cnai.core.quantity import parse_quantity
from cnai.scheduling.api import (
    BorrowWithinCohortPolicy,
    ClusterQueue,
    LocalQueue,
    PriorityClass,
    Quantity,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    Workload,
)

MAX_POD_SETS = 8  # as Kueue


def quantity_error(path: str, value: Quantity | None) -> tuple[Decimal | None, list[FieldError]]:
    """The parsed quantity, or the error naming ``path``; None stays None."""
    if value is None:
        return None, []
    try:
        return parse_quantity(value), []
    except ValueError as exc:
        return None, [FieldError(path, f"must be a quantity such as 500m, 2 or 16Gi ({exc})")]


def _name_errors(path: str, name: str) -> list[FieldError]:
    err = dns1123_label_error(name)
    return [FieldError(path, err)] if err else []


def _quota_errors(path: str, quota: ResourceQuota, cohort: str) -> list[FieldError]:
    nominal, errors = quantity_error(f"{path}.nominalQuota", quota.nominal_quota)
    _, borrow_errors = quantity_error(f"{path}.borrowingLimit", quota.borrowing_limit)
    lending, lend_errors = quantity_error(f"{path}.lendingLimit", quota.lending_limit)
    errors += borrow_errors + lend_errors
    if nominal is not None and lending is not None and lending > nominal:
        errors.append(FieldError(f"{path}.lendingLimit", "must be at most nominalQuota"))
    for field, value in (("borrowingLimit", quota.borrowing_limit), ("lendingLimit", lending)):
        if value is not None and not cohort:
            errors.append(FieldError(f"{path}.{field}", "may be set only with spec.cohort"))
    return errors


def _group_errors(i: int, group: ResourceGroup, cohort: str) -> list[FieldError]:
    path = f"spec.resourceGroups[{i}]"
    errors = []
    if not group.covered_resources:
        errors.append(FieldError(f"{path}.coveredResources", "must name at least one resource"))
    if not group.flavors:
        errors.append(FieldError(f"{path}.flavors", "must list at least one flavor"))
    covered = set(group.covered_resources)
    for j, flavor in enumerate(group.flavors):
        fpath = f"{path}.flavors[{j}]"
        errors += _name_errors(f"{fpath}.name", flavor.name)
        names = [r.name for r in flavor.resources]
        if set(names) != covered or len(names) != len(covered):
            errors.append(
                FieldError(f"{fpath}.resources", "must list each covered resource exactly once")
            )
        for k, quota in enumerate(flavor.resources):
            errors += _quota_errors(f"{fpath}.resources[{k}]", quota, cohort)
    return errors


def _duplicates(values: Iterable[str]) -> set[str]:
    seen: set[str] = set()
    dup: set[str] = set()
    for v in values:
        (dup if v in seen else seen).add(v)
    return dup


def cluster_queue_rules(cq: ClusterQueue, old: ClusterQueue | None) -> list[FieldError]:
    """Quotas are quantities, lending within nominal, resources and flavors in one group."""
    spec = cq.spec
    errors = _name_errors("spec.cohort", spec.cohort) if spec.cohort else []
    for i, group in enumerate(spec.resource_groups):
        errors += _group_errors(i, group, spec.cohort)
    groups = spec.resource_groups
    if dup := _duplicates(r for g in groups for r in g.covered_resources):
        errors.append(FieldError("spec.resourceGroups", f"resources in two groups: {sorted(dup)}"))
    if dup := _duplicates(f.name for g in groups for f in g.flavors):
        errors.append(FieldError("spec.resourceGroups", f"flavors listed twice: {sorted(dup)}"))
    _, weight_errors = quantity_error("spec.fairSharing.weight", spec.fair_sharing.weight)
    errors += weight_errors
    guard = spec.starvation_guard
    for field, value in (
        ("maxWaitSeconds", guard.max_wait_seconds),
        ("maxBypasses", guard.max_bypasses),
    ):
        if value < 0:
            errors.append(FieldError(f"spec.starvationGuard.{field}", "must be >= 0"))
    borrow = spec.preemption.borrow_within_cohort
    if (
        borrow.max_priority_threshold is not None
        and borrow.policy == BorrowWithinCohortPolicy.NEVER
    ):
        errors.append(
            FieldError(
                "spec.preemption.borrowWithinCohort.maxPriorityThreshold",
                "may be set only with policy LowerPriority",
            )
        )
    return errors


def local_queue_rules(lq: LocalQueue, old: LocalQueue | None) -> list[FieldError]:
    """A LocalQueue names a ClusterQueue, which then never changes (as in Kueue)."""
    if not lq.spec.cluster_queue:
        return [
            FieldError(
                "spec.clusterQueue",
                "is required: the ClusterQueue to submit to",
                "FieldValueRequired",
            )
        ]
    errors = _name_errors("spec.clusterQueue", lq.spec.cluster_queue)
    if old is not None and old.spec.cluster_queue != lq.spec.cluster_queue:
        errors.append(FieldError("spec.clusterQueue", "field is immutable"))
    return errors


def resource_flavor_rules(rf: ResourceFlavor, old: ResourceFlavor | None) -> list[FieldError]:
    """Node labels are valid label keys and values."""
    errors = []
    for key, value in rf.spec.node_labels.items():
        if err := label_key_error(key) or label_value_error(value):
            errors.append(FieldError(f"spec.nodeLabels.{key}", err))
    return errors


def priority_class_rules(pc: PriorityClass, old: PriorityClass | None) -> list[FieldError]:
    """The value is bounded (as Kubernetes' user classes) and never changes."""
    errors = []
    if not -(10**9) <= pc.value <= 10**9:
        errors.append(FieldError("value", "must be between -1000000000 and 1000000000"))
    if old is not None and old.value != pc.value:
        errors.append(FieldError("value", "field is immutable"))
    return errors


def _pod_set_errors(i: int, wl: Workload) -> list[FieldError]:
    ps = wl.spec.pod_sets[i]
    path = f"spec.podSets[{i}]"
    errors = _name_errors(f"{path}.name", ps.name)
    if ps.count < 1:
        errors.append(FieldError(f"{path}.count", "must be >= 1"))
    if ps.min_count is not None and not 1 <= ps.min_count <= ps.count:
        # Also what rejects a resize below minCount: an elastic pod set never goes lower.
        errors.append(FieldError(f"{path}.minCount", f"must be between 1 and count ({ps.count})"))
    for name, value in ps.requests.items():
        errors += quantity_error(f"{path}.requests.{name}", value)[1]
    return errors


def workload_rules(wl: Workload, old: Workload | None) -> list[FieldError]:
    """One to eight named pod sets with sane counts; requests fixed once created."""
    sets = wl.spec.pod_sets
    errors = []
    if not 1 <= len(sets) <= MAX_POD_SETS:
        errors.append(FieldError("spec.podSets", f"must have 1 to {MAX_POD_SETS} pod sets"))
    if dup := _duplicates(ps.name for ps in sets):
        errors.append(FieldError("spec.podSets", f"names must be unique: {sorted(dup)}"))
    for i in range(len(sets)):
        errors += _pod_set_errors(i, wl)
    if wl.spec.queue_name:
        errors += _name_errors("spec.queueName", wl.spec.queue_name)
    if old is not None:
        before = [(p.name, p.requests) for p in old.spec.pod_sets]
        if before != [(p.name, p.requests) for p in sets]:
            errors.append(FieldError("spec.podSets", "only count and minCount may change (resize)"))
    return errors
