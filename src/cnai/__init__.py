"""cnai: a cloud-native AI platform with one declarative control plane.

The public SDK surface: ``cnai.Client`` and ``cnai.AsyncClient`` talk to a running
platform (``cnai up``) using the same config file as the ``cnai`` command;
``cnai.start_run()``, ``cnai.log_metrics()``, ``cnai.log_params()``, ``cnai.set_tags()``,
``cnai.log_artifact()`` and ``cnai.end_run()`` log runs to its tracking store without blocking (see
:mod:`cnai.tracking.sdk`).
"""

from cnai.core.client import AsyncClient, Client
from cnai.tracking.sdk import (
    active_run,
    end_run,
    log_artifact,
    log_metrics,
    log_params,
    set_tags,
    start_run,
)
from cnai.version import __version__

__all__ = [
    "AsyncClient",
    "Client",
    "__version__",
    "active_run",
    "end_run",
    "log_artifact",
    "log_metrics",
    "log_params",
    "set_tags",
    "start_run",
]
