"""Flavor assignment and partial admission: where a workload fits, and at what size.

As Kueue's flavor assigner: for each pod set and each resource group it requests, the
first flavor in the group's order with room for all of the group's resources wins.
Pod sets are all or nothing (a gang never gets part of a pod set); with ``minCount``
the largest count between ``minCount`` and ``count`` that fits is taken (Kueue's
partial admission), shrinking every elastic pod set by the same number of pods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from cnai.scheduling.admission.quota import ZERO, add
from cnai.scheduling.admission.snapshot import (
    Amounts,
    ClusterQueue,
    FlavorResource,
    PodSet,
)

# Whether the ClusterQueue may take these extra amounts, and how much of one it may take.
Fits = Callable[[ClusterQueue, Amounts], bool]
Room = Callable[[ClusterQueue, FlavorResource], Decimal]


@dataclass(frozen=True)
class PodSetFit:
    """One pod set's admitted count and flavor per resource."""

    name: str
    count: int
    flavors: Mapping[str, str]
    usage: Mapping[str, Decimal]  # resource -> total


@dataclass(frozen=True)
class Assignment:
    """A workload's pod sets placed in flavors, and the quota that takes."""

    pod_sets: tuple[PodSetFit, ...]
    usage: Amounts

    @property
    def counts(self) -> Mapping[str, int]:
        return {p.name: p.count for p in self.pod_sets}


@dataclass(frozen=True)
class Shortage:
    """Why a workload does not fit: the resource and flavor it is shortest of."""

    resource: str
    flavor: str
    needed: Decimal
    free: Decimal
    uncovered: bool = False  # the ClusterQueue has no quota for the resource at all


def _requested(ps: PodSet) -> list[str]:
    return [r for r, v in ps.requests.items() if v > 0]


def _assign_pod_set(
    cq: ClusterQueue, ps: PodSet, count: int, taken: Amounts, fits: Fits, room: Room
) -> PodSetFit | Shortage:
    flavors: dict[str, str] = {}
    for group in cq.groups:
        wanted = [r for r in _requested(ps) if r in group.resources]
        if not wanted:
            continue
        shortages: list[Shortage] = []
        for flavor in group.flavors:
            amounts = {(flavor, r): ps.requests[r] * count for r in wanted}
            if fits(cq, add(taken, amounts)):
                flavors.update({r: flavor for r in wanted})
                break
            shortages.append(_shortage(cq, flavor, amounts, taken, room))
        else:
            # Report the flavor with the most room: it is the nearest to fitting.
            return max(shortages, key=lambda s: s.free)
    for r in _requested(ps):
        if r not in flavors:
            return Shortage(r, "", ps.requests[r] * count, ZERO, uncovered=True)
    usage = {r: ps.requests[r] * count for r in _requested(ps)}
    return PodSetFit(ps.name, count, flavors, usage)


def _shortage(
    cq: ClusterQueue, flavor: str, amounts: Amounts, taken: Amounts, room: Room
) -> Shortage:
    worst: Shortage | None = None
    for fr, v in amounts.items():
        free = max(ZERO, room(cq, fr) - taken.get(fr, ZERO))
        if v > free and (worst is None or v - free > worst.needed - worst.free):
            worst = Shortage(fr[1], flavor, v, free)
    return worst or Shortage(next(iter(amounts))[1], flavor, ZERO, ZERO)


def assign(
    cq: ClusterQueue,
    pod_sets: tuple[PodSet, ...],
    counts: Mapping[str, int],
    fits: Fits,
    room: Room,
) -> Assignment | Shortage:
    """Place every pod set at ``counts`` or report the first shortage."""
    taken: dict[FlavorResource, Decimal] = {}
    placed = []
    for ps in pod_sets:
        result = _assign_pod_set(cq, ps, counts[ps.name], taken, fits, room)
        if isinstance(result, Shortage):
            return result
        placed.append(result)
        taken = add(taken, {(result.flavors[r], r): v for r, v in result.usage.items()})
    return Assignment(tuple(placed), taken)


def sizes(pod_sets: tuple[PodSet, ...]) -> list[dict[str, int]]:
    """Counts to try, largest first: every elastic pod set one pod smaller each step."""
    steps = max((ps.count - ps.least for ps in pod_sets), default=0)
    return [{ps.name: max(ps.least, ps.count - s) for ps in pod_sets} for s in range(steps + 1)]


def least(pod_sets: tuple[PodSet, ...]) -> dict[str, int]:
    return {ps.name: ps.least for ps in pod_sets}


def fit(
    cq: ClusterQueue, pod_sets: tuple[PodSet, ...], fits: Fits, room: Room
) -> Assignment | Shortage:
    """The largest admissible size, or the shortage at the smallest size (minCount)."""
    result: Assignment | Shortage = Shortage("", "", ZERO, ZERO)
    for counts in sizes(pod_sets):  # the last is every pod set at its minCount
        result = assign(cq, pod_sets, counts, fits, room)
        if isinstance(result, Assignment):
            return result
    return result
