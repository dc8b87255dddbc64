"""The scheduler's output: what to admit, resize and preempt, and why the rest wait.

The shell turns each decision into status writes (Workload conditions, admission,
message; ClusterQueue usage) and runtime calls (stopping preempted pods with
SIGTERM, then SIGKILL at ``kill_after``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from cnai.scheduling.admission.flavors import PodSetFit
from cnai.scheduling.admission.preemption import PreemptReason
from cnai.scheduling.admission.snapshot import Inadmissible


class WaitReason(StrEnum):
    """Why a pending workload was not admitted this cycle (the Workload's status.reason)."""

    NO_QUOTA = "NoQuota"  # it does not fit, and preemption would not help
    PREEMPTING = "Preempting"  # victims were chosen this cycle; it waits for them to stop
    WAITING_FOR_PREEMPTION = "WaitingForPreemption"  # victims chosen earlier still stopping
    BLOCKED = "Blocked"  # behind a head that holds the queue (StrictFIFO or starving)
    INADMISSIBLE = "Inadmissible"  # it can never fit, or its queue does not exist


@dataclass(frozen=True)
class Admit:
    """Reserve quota for a workload: its pod sets at these counts, in these flavors."""

    workload: str
    cluster_queue: str
    pod_sets: tuple[PodSetFit, ...]
    borrowing: bool = False


@dataclass(frozen=True)
class Resize:
    """Grow an admitted elastic workload to these counts (same flavors)."""

    workload: str
    cluster_queue: str
    counts: Mapping[str, int]


@dataclass(frozen=True)
class Preempt:
    """Stop a victim (whole, or down to ``shrink_to`` pods) so that ``preemptor`` fits.

    Its quota is reused only once its pods have stopped: SIGTERM now, SIGKILL at
    ``kill_after`` (its grace period).
    """

    victim: str
    cluster_queue: str
    preemptor: str
    reason: PreemptReason
    message: str
    kill_after: datetime
    shrink_to: Mapping[str, int] | None = None


class Wait(NamedTuple):
    """A pending workload that stays pending, and why in words a user understands.

    A cycle reports the workloads it decided; one it skipped as still inadmissible is
    not reported unless its bypass count moved, and waits as before. Its position in
    its queue is not reported at all: it moves with every admission ahead of it, so it
    is computed when someone asks (``cnai describe workload``) rather than written on
    every cycle. A named tuple, not a frozen dataclass: a tuple is built several times
    faster.
    """

    workload: str
    cluster_queue: str
    reason: WaitReason
    why: str
    bypassed: int  # updated count of later workloads admitted past it
    starving: bool = False

    @property
    def message(self) -> str:
        return self.why


@dataclass(frozen=True)
class ResourceLine:
    """Quota and usage of one flavor-resource of a ClusterQueue after this cycle."""

    flavor: str
    resource: str
    nominal: Decimal
    borrowed: Decimal
    used: Decimal


@dataclass(frozen=True)
class QueueUsage:
    """A ClusterQueue's status after this cycle."""

    lines: tuple[ResourceLine, ...]
    pending: Mapping[str, Decimal]  # resource -> requested by pending workloads
    pending_workloads: int
    admitted_workloads: int
    text: str  # e.g. cpu 4/8 gpu 2/4 (borrowed gpu 1)


@dataclass(frozen=True)
class Decisions:
    """Everything one scheduling cycle decided."""

    admit: tuple[Admit, ...] = ()
    resize: tuple[Resize, ...] = ()
    preempt: tuple[Preempt, ...] = ()
    wait: tuple[Wait, ...] = ()
    usage: Mapping[str, QueueUsage] = field(default_factory=dict)
    # Workloads that did not fit and found no preemption, with the facts they failed
    # against: the shell passes these to the next cycle as ``Snapshot.inadmissible``.
    inadmissible: Mapping[str, Inadmissible] = field(default_factory=dict)

    def admitted(self, key: str) -> Admit | None:
        return next((a for a in self.admit if a.workload == key), None)

    def waiting(self, key: str) -> Wait | None:
        return next((w for w in self.wait if w.workload == key), None)
