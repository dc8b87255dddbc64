"""Words for decisions: quantities as people write them, and why a workload waits."""

from __future__ import annotations

from decimal import Decimal

from cnai.core.quantity import format_bytes
from cnai.scheduling.admission.flavors import Shortage
from cnai.scheduling.admission.snapshot import ClusterQueue


def amount(resource: str, value: Decimal) -> str:
    """``4``, ``500m`` (fractions of a cpu or gpu), ``16Gi`` (memory)."""
    if value == value.to_integral_value():
        n = int(value)
        return format_bytes(n) if resource == "memory" and n else str(n)
    milli = value * 1000
    if milli == milli.to_integral_value():
        return f"{int(milli)}m"
    return str(value.normalize())


def where(cq: ClusterQueue) -> str:
    return f"cohort {cq.cohort}" if cq.cohort else f"clusterqueue {cq.name}"


def shortage(cq: ClusterQueue, short: Shortage) -> str:
    """``needs 4 gpu in flavor a100, cohort research has 2 free``."""
    if short.uncovered:
        return f"requests {short.resource}, which clusterqueue {cq.name} has no quota for"
    need = amount(short.resource, short.needed)
    free = amount(short.resource, short.free)
    return f"needs {need} {short.resource} in flavor {short.flavor}, {where(cq)} has {free} free"


def never_fits(cq: ClusterQueue, short: Shortage, capacity: Decimal) -> str:
    need = amount(short.resource, short.needed)
    cap = amount(short.resource, capacity)
    return (
        f"needs {need} {short.resource} but clusterqueue {cq.name} can never hold more than "
        f"{cap} in flavor {short.flavor}"
    )
