"""Serving: the InferenceService kind, the model server, batching, the gateway and the
autoscaler (DESIGN.md section 4).

The model server (:mod:`cnai.serving.server`) is what an InferenceService's pods run:
Open Inference Protocol v2 and KServe v1 over a lean ASGI app. The autoscaler
(:mod:`cnai.serving.autoscaler`) is a pure function over request metrics with Knative
KPA semantics.
"""

from typing import Any as _Any


def register(platform: _Any) -> None:
    """Register the InferenceService kind and, where the platform serves, the gateway's
    routes and the controller."""
    from cnai.core.registry import Column, KindInfo
    from cnai.scheduling.references import queue_references
    from cnai.serving.api import InferenceService
    from cnai.serving.controller import inferenceservice_controller
    from cnai.serving.gateway import route_factory

    platform.registry.register(
        KindInfo(
            InferenceService,
            columns=(
                Column("STATUS", "status.phase"),
                Column("READY", "status.replicasText"),
                Column("LATEST", "status.latestRevision"),
                Column("URL", "status.url"),
                Column("MODEL", "spec.predictor.model", wide=True),
                Column("REASON", "status.reason", wide=True),
            ),
            reference_checks=(queue_references,),
        )
    )
    routes: list[_Any] | None = getattr(platform, "route_factories", None)
    if routes is not None:
        routes.append(route_factory)
    factories: list[_Any] | None = getattr(platform, "controller_factories", None)
    if factories is not None:
        factories.append(inferenceservice_controller)
