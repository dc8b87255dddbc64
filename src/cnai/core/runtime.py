"""The Runtime protocol: what an engine (local processes, Kubernetes, Ray) does for pods.

The pod controller resolves everything a pod needs (env with Secret values, limits,
GPU indices) into a :class:`PodLaunch`, so runtimes never read the store.

An engine with a replica controller of its own (Kubernetes' Deployments) also offers
:class:`ReplicaSets`, an optional capability: the InferenceService controller then hands
it a revision's replica count instead of starting one cnai Pod per replica.

An engine over several machines that cnai should place on one by one (Ray) is
:class:`MultiNode`: one cnai Node per machine instead of one for the whole engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class PodLaunch:
    """A pod, resolved for a runtime. ``uid`` identifies it across restarts.

    ``pod`` is the Pod object itself, for an engine that renders it rather than runs the
    resolved command (Kubernetes keeps Secret references as references, so it reads
    ``env`` from the object, never the resolved values here).
    """

    uid: str
    namespace: str
    name: str
    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str | None = None
    memory_limit_bytes: int | None = None
    cpu_request: float = 0.0
    gpu_indices: tuple[int, ...] = ()
    grace_seconds: float = 30.0
    pod: dict[str, Any] | None = field(default=None, compare=False, repr=False)


class ProcessState(StrEnum):
    """What a runtime knows of a pod's process: running, exited, or nothing (not found).

    PENDING: launched but not started yet, e.g. a Kubernetes Pod waiting for a node or
    for its image; the observation's reason and message say why.
    """

    PENDING = "Pending"
    RUNNING = "Running"
    EXITED = "Exited"
    NOT_FOUND = "NotFound"


@dataclass(frozen=True)
class Observation:
    """A pod's process as the runtime sees it now."""

    state: ProcessState
    exit_code: int | None = None
    # Completed (exit 0), Error (non-zero), OOMKilled, Killed (stopped by request),
    # or another CamelCase reason the runtime knows.
    reason: str = ""
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Where the platform reaches the pod's process (its listening ports): a Kubernetes
    # Pod's IP, say. "" means this machine, i.e. loopback, as for the local runtime.
    address: str = ""


@dataclass(frozen=True)
class NodeInfo:
    """The machine a runtime runs pods on, for the Node object."""

    name: str
    capacity: dict[str, str]
    allocatable: dict[str, str]
    gpus: list[dict[str, object]] = field(default_factory=list)
    memory_enforcement: str = ""
    labels: dict[str, str] = field(default_factory=dict)


class Runtime(Protocol):
    """An engine that runs pods. Every method is idempotent for a given uid."""

    name: str

    async def launch(self, pod: PodLaunch) -> None:
        """Start the pod's process unless one was already started for this uid."""
        ...

    async def stop(self, uid: str, grace_seconds: float) -> None:
        """SIGTERM the pod's processes, SIGKILL after ``grace_seconds``; returns at once."""
        ...

    async def observe(self, uid: str) -> Observation:
        """The process's state now (NOT_FOUND if this runtime never started it)."""
        ...

    async def known_pods(self) -> list[str]:
        """Uids of every pod this runtime holds state for (running or ended)."""
        ...

    def logs(self, uid: str, *, follow: bool = False, offset: int = 0) -> AsyncIterator[bytes]:
        """The pod's output from byte ``offset``; with ``follow``, until the process ends."""
        ...

    async def remove(self, uid: str) -> None:
        """Forget an ended pod: delete its logs and state. Stops it first if needed."""
        ...

    async def node(self) -> NodeInfo:
        """The machine's capacity and devices."""
        ...


@dataclass(frozen=True)
class ReplicaSetSpec:
    """A set of identical replicas the engine keeps at ``replicas`` (an InferenceService
    revision): ``pod`` is one replica's cnai Pod, the template, as the job kind builds
    it; ``env`` what the platform tells every pod (``CNAI_SERVER``, ``CNAI_NAMESPACE``)."""

    namespace: str
    name: str
    pod: dict[str, Any] = field(compare=False, repr=False)
    replicas: int
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplicaEndpoint:
    """One replica of a set as the engine sees it now. ``address`` is where it is
    reached ("" until the engine knows it, e.g. a Pod IP not assigned yet), on ``port``."""

    name: str
    address: str = ""
    port: int = 0
    running: bool = False
    terminating: bool = False


@runtime_checkable
class ReplicaSets(Protocol):
    """An engine's own replica sets (optional, next to :class:`Runtime`). Every method
    is idempotent; a set is named by its namespace and name."""

    async def apply_replicas(self, spec: ReplicaSetSpec) -> None:
        """Create the set, or bring it to ``spec`` (its count, its template)."""
        ...

    async def replica_endpoints(self, namespace: str, name: str) -> list[ReplicaEndpoint]:
        """The set's replicas now, ended ones left out (none if there is no such set)."""
        ...

    async def delete_replicas(self, namespace: str, name: str) -> None:
        """Delete the set and its replicas (nothing to do if it is gone)."""
        ...


@runtime_checkable
class MultiNode(Protocol):
    """An engine whose machines are each a cnai Node (optional, next to :class:`Runtime`),
    so that cnai's scheduler places gang members on real machines.

    Having ``nodes()`` is not enough to be treated so: the Kubernetes runtime has one and
    is presented as one aggregated node on purpose (Kubernetes' scheduler places its
    Pods). The platform opts a runtime in where it builds it (``cnai.platform``)."""

    name: str

    async def nodes(self) -> list[NodeInfo]:
        """One entry per machine alive now; a machine keeps its name while it lives."""
        ...
