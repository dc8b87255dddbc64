"""Policies by name, as the CLI and the simulator ask for them."""

from __future__ import annotations

from collections.abc import Callable

from cnai.scheduling.placement.base import Policy
from cnai.scheduling.placement.best_fit import BestFit
from cnai.scheduling.placement.fgd import FGD
from cnai.scheduling.placement.fgd_packed import FGDPacked
from cnai.scheduling.placement.first_fit import FirstFit
from cnai.scheduling.placement.random_fit import RandomFit
from cnai.scheduling.placement.workload import TargetWorkload

_FACTORIES: dict[str, Callable[[TargetWorkload | None], Policy]] = {
    "first-fit": lambda _: FirstFit(),
    "random-fit": lambda _: RandomFit(),
    "best-fit": lambda _: BestFit(),
    "fgd": lambda w: FGD(_needs(w, "fgd")),
    "fgd-packed": lambda w: FGDPacked(_needs(w, "fgd-packed")),
}

POLICY_NAMES = tuple(_FACTORIES)
WORKLOAD_POLICIES = frozenset({"fgd", "fgd-packed"})  # need a target workload


def _needs(workload: TargetWorkload | None, name: str) -> TargetWorkload:
    if workload is None:
        raise ValueError(f"policy {name!r} needs a target workload")
    return workload


def make_policy(name: str, workload: TargetWorkload | None = None) -> Policy:
    """A fresh policy instance (policies may memoise, so one per simulation run)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown policy {name!r}; one of {', '.join(POLICY_NAMES)}") from None
    return factory(workload)
