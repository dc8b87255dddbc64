"""cnai: a cloud-native AI platform with one declarative control plane.

The public SDK surface: ``cnai.Client`` and ``cnai.AsyncClient`` talk to a running
platform (``cnai up``) using the same config file as the ``cnai`` command;
``cnai.start_run()``, ``cnai.log_metrics()``, ``cnai.log_params()``, ``cnai.set_tags()``,
``cnai.log_artifact()`` and ``cnai.end_run()`` log runs to its tracking store without
blocking, and ``cnai.register_model()`` registers a run's model (see
:mod:`cnai.tracking.sdk`). In a training script, ``cnai.world_info()`` says where the
worker stands in a distributed job and ``cnai.checkpoint`` saves and resumes checkpoints
(see :mod:`cnai.training`); neither imports torch until it is used.

Every workload process imports this package, so it stays light: the clients (httpx and
the pydantic API types) are imported on first use of ``cnai.Client`` or
``cnai.AsyncClient``, and logging a run needs only the standard library.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from cnai.tracking.sdk import (
    active_run,
    end_run,
    log_artifact,
    log_metrics,
    log_params,
    register_model,
    set_tags,
    start_run,
)
from cnai.training import checkpoint
from cnai.training.world import world_info
from cnai.version import __version__

if TYPE_CHECKING:
    from cnai.core.client import AsyncClient, Client

# public name -> the module that defines it, imported on first use (PEP 562)
_LAZY = {"AsyncClient": "cnai.core.client", "Client": "cnai.core.client"}

__all__ = [
    "AsyncClient",
    "Client",
    "__version__",
    "active_run",
    "checkpoint",
    "end_run",
    "log_artifact",
    "log_metrics",
    "log_params",
    "register_model",
    "set_tags",
    "start_run",
    "world_info",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups find it without coming here
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
