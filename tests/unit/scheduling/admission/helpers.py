"""Reading decisions in tests: who was admitted, at what size, in which flavor."""

from __future__ import annotations

from cnai.scheduling.admission import Decisions, Snapshot, schedule

from ..builders import T0


def run(snapshot: Snapshot, seconds: float = 0) -> Decisions:
    from datetime import timedelta

    return schedule(snapshot, T0 + timedelta(seconds=seconds))


def admitted(decisions: Decisions) -> dict[str, int]:
    """Workload name to admitted pods (all pod sets)."""
    return {
        a.workload.removeprefix("default/"): sum(p.count for p in a.pod_sets)
        for a in decisions.admit
    }


def flavors(decisions: Decisions) -> dict[str, str]:
    """Workload name to the flavors it got, joined (one resource group in these tests)."""
    return {
        a.workload.removeprefix("default/"): ",".join(
            sorted({f for p in a.pod_sets for f in p.flavors.values()})
        )
        for a in decisions.admit
    }


def victims(decisions: Decisions) -> dict[str, str]:
    """Victim name to "evict" or "shrink to N"."""
    return {
        p.victim.removeprefix("default/"): (
            "evict" if p.shrink_to is None else f"shrink to {sum(p.shrink_to.values())}"
        )
        for p in decisions.preempt
    }


def message(decisions: Decisions, name: str) -> str:
    wait = decisions.waiting(f"default/{name}")
    assert wait is not None, f"{name} is not waiting"
    return wait.message
