"""The controller manager: informers, work queues and the reconcilers that run on them."""

from cnai.core.controllers.backoff import Backoff, RateLimiter
from cnai.core.controllers.informer import Handlers, Informer
from cnai.core.controllers.manager import Manager
from cnai.core.controllers.types import (
    ControllerContext,
    ControllerFactory,
    ControllerSpec,
    Reconciler,
    Request,
    Result,
)
from cnai.core.controllers.workqueue import WorkQueue

__all__ = [
    "Backoff",
    "ControllerContext",
    "ControllerFactory",
    "ControllerSpec",
    "Handlers",
    "Informer",
    "Manager",
    "RateLimiter",
    "Reconciler",
    "Request",
    "Result",
    "WorkQueue",
]
