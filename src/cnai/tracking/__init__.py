"""Tracking capability: runs, params, tags and metric histories (and, later, artifacts)
in a store of their own (``tracking.db``), behind cnai's tracking API
(:mod:`cnai.tracking.routes`) and the same tokens as the resource API; and the model
registry, as resources (``Model``, ``ModelVersion``).

``register(platform)`` hands the platform the factory of its routes; the store opens
when the platform serves.
"""

from typing import Any as _Any


def register(platform: _Any) -> None:
    """Register the registry kinds (Model, ModelVersion) and, where the platform serves
    an API, the tracking routes."""
    from cnai.core.registry import Column, KindInfo
    from cnai.tracking.api import Model, ModelVersion
    from cnai.tracking.routes import route_factory
    from cnai.tracking.validation import model_rules, model_version_rules

    platform.registry.register(
        KindInfo(
            Model,
            columns=(
                Column("DISPLAY NAME", "spec.displayName"),
                Column("LATEST", "status.latestVersion"),
                Column("ALIASES", "spec.aliases"),
            ),
            validators=(model_rules,),
        )
    )
    platform.registry.register(
        KindInfo(
            ModelVersion,
            columns=(
                Column("MODEL", "spec.model"),
                Column("VERSION", "spec.version"),
                Column("FORMAT", "spec.format"),
                Column("RUN", "spec.runId"),
                Column("SOURCE", "spec.source", wide=True),
            ),
            validators=(model_version_rules,),
            has_status=False,
        )
    )
    factories: list[_Any] | None = getattr(platform, "route_factories", None)
    if factories is not None:
        factories.append(route_factory)
