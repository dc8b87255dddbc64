"""Training: the ``TrainJob`` kind and its controller (:mod:`cnai.training.api`,
:mod:`cnai.training.controller`), and what a training script uses to run under cnai (and
under plain torchrun).

``register(platform)`` hands the kind and the controller's factory to the platform.

- :class:`WorldInfo` and :func:`world_info` (:mod:`cnai.training.world`) read the
  torchrun environment a TrainJob launches its workers with: ranks, sizes, rendezvous and
  the restart count.
- :mod:`cnai.training.checkpoint` saves checkpoints atomically to the directory the
  platform keeps across restarts (``$CNAI_CHECKPOINT_DIR``) and resumes from the newest
  one that loads.

The names below are imported on first use, so ``import cnai`` stays fast; torch itself is
imported only inside the functions that need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnai.training import checkpoint
    from cnai.training.checkpoint import Checkpoint
    from cnai.training.world import WorldInfo, world_info

# public name -> (module, attribute); attribute None means the module itself
_LAZY: dict[str, tuple[str, str | None]] = {
    "checkpoint": ("cnai.training.checkpoint", None),
    "Checkpoint": ("cnai.training.checkpoint", "Checkpoint"),
    "WorldInfo": ("cnai.training.world", "WorldInfo"),
    "world_info": ("cnai.training.world", "world_info"),
}

__all__ = ["Checkpoint", "WorldInfo", "checkpoint", "register", "world_info"]


def register(platform: Any) -> None:
    """Register the TrainJob kind and, where the platform runs controllers, its controller."""
    from cnai.batch.admission import pod_validators
    from cnai.core.registry import Column, KindInfo
    from cnai.scheduling.references import queue_references
    from cnai.training.admission import trainjob_validator
    from cnai.training.api import TrainJob
    from cnai.training.controller import trainjob_controller

    platform.registry.register(
        KindInfo(
            TrainJob,
            columns=(
                Column("STATUS", "status.phase"),
                Column("NODES", "status.nodesText"),
                Column("RESTARTS", "status.restarts"),
                Column("QUEUE", "spec.queue", wide=True),
                Column("RUN", "status.runId", wide=True),
                Column("STARTED", "status.startTime", wide=True, type="date"),
            ),
            validators=(trainjob_validator(pod_validators(platform.registry)),),
            reference_checks=(queue_references,),
        )
    )
    factories: list[Any] | None = getattr(platform, "controller_factories", None)
    if factories is not None:
        factories.append(trainjob_controller)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attribute is None else getattr(module, attribute)
    globals()[name] = value
    return value
