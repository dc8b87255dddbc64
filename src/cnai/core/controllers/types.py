"""What a controller is: a reconciler for one kind, and the objects whose changes wake it.

Reconcilers are level-triggered (DESIGN.md section 2): given a key they read the world,
decide in a pure function, act idempotently, write status only when it changed, and
return an optional requeue delay. A crash at any line is recovered by running again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cnai.core.clock import Clock
    from cnai.core.controllers.informer import Informer
    from cnai.core.events import EventRecorder
    from cnai.core.registry import Registry
    from cnai.core.resources import ResourceService
    from cnai.core.runtime import Runtime
    from cnai.core.store.protocol import Obj, Store


@dataclass(frozen=True, order=True)
class Request:
    """The key of one object to reconcile."""

    namespace: str | None
    name: str

    @classmethod
    def of(cls, obj: Obj) -> Request:
        meta = obj.get("metadata") or {}
        return cls(meta.get("namespace") or None, str(meta.get("name", "")))


@dataclass(frozen=True)
class Result:
    """What a reconcile asks for next: nothing, or another look after ``requeue_after`` s."""

    requeue_after: float | None = None


class Reconciler(Protocol):
    """Brings one object's world closer to its spec. Raising means: retry with backoff."""

    async def reconcile(self, request: Request) -> Result: ...


# Maps a changed object of a watched kind to the keys of the objects to reconcile.
Mapper = Callable[["Obj"], list[Request]]


@dataclass(frozen=True)
class ControllerSpec:
    """One controller: its primary kind, the kinds it owns, and other watches."""

    name: str
    kind: str  # plural of the primary kind, e.g. "jobs"
    reconciler: Reconciler
    # Changes to these kinds enqueue the owner named by a controller ownerReference
    # whose kind is this controller's kind.
    owns: tuple[str, ...] = ()
    # Other (plural, mapper) pairs: a change to such an object enqueues mapper(obj).
    watches: tuple[tuple[str, Mapper], ...] = ()
    # Changes outside the store (e.g. metrics logged to the tracking store): each source
    # is called once, when the controller is added, with a function that enqueues a
    # request; it calls that function whenever something the controller follows changed.
    sources: tuple[Callable[[Callable[[Request], None]], None], ...] = ()
    workers: int = 1


@dataclass
class ControllerContext:
    """What the platform hands a controller factory."""

    registry: Registry
    store: Store
    service: ResourceService
    clock: Clock
    runtime: Runtime
    recorder: Callable[[str], EventRecorder]  # component name -> recorder
    settings: dict[str, Any] = field(default_factory=dict)
    # The URL workloads reach the platform's API at (given to every pod as CNAI_SERVER).
    server_url: str = ""
    # The platform's state directory on this machine (None where there is none); e.g.
    # TrainJobs keep their checkpoints under it.
    home: Path | None = None
    # Objects capabilities open once and share between their routes and controllers,
    # by a key the owning capability names (e.g. the tracking store).
    services: dict[str, Any] = field(default_factory=dict)
    # The manager's shared informer (cache) of a plural, for controllers that read many
    # objects on every reconcile; None where controllers run without a manager (tests).
    informer: Callable[[str], Informer] | None = None


ControllerFactory = Callable[[ControllerContext], ControllerSpec]
