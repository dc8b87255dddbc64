"""cnai: a cloud-native AI platform with one declarative control plane.

The public SDK surface: ``cnai.Client`` and ``cnai.AsyncClient`` talk to a running
platform (``cnai up``) using the same config file as the ``cnai`` command;
``cnai.start_run()``, ``cnai.log_metrics()``, ``cnai.log_params()``, ``cnai.set_tags()``,
``cnai.log_artifact()`` and ``cnai.end_run()`` log runs to its tracking store without
blocking, and ``cnai.register_model()`` registers a run's model (see
:mod:`cnai.tracking.sdk`). In a training script, ``cnai.world_info()`` says where the
worker stands in a distributed job and ``cnai.checkpoint`` saves and resumes checkpoints
(see :mod:`cnai.training`); neither imports torch until it is used.
"""

from cnai.core.client import AsyncClient, Client
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
