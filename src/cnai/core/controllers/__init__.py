"""The controller manager: informers, work queues and the reconcilers that run on them."""

from cnai.core.controllers.types import (
    ControllerContext,
    ControllerFactory,
    ControllerSpec,
    Reconciler,
    Request,
    Result,
)

__all__ = [
    "ControllerContext",
    "ControllerFactory",
    "ControllerSpec",
    "Reconciler",
    "Request",
    "Result",
]
