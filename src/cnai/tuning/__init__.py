"""Tuning: the ``Experiment`` and ``Trial`` kinds and the Experiment controller, which
runs Optuna's samplers and pruners over trials that are TrainJobs
(:mod:`cnai.tuning.api`, :mod:`cnai.tuning.controller`, :mod:`cnai.tuning.search`).

``register(platform)`` hands the kinds and the controller's factory to the platform.
Optuna is imported only when the controller first runs.
"""

from __future__ import annotations

from typing import Any


def register(platform: Any) -> None:
    """Register Experiment and Trial and, where the platform runs controllers, the
    Experiment controller."""
    from cnai.batch.admission import pod_validators
    from cnai.core.registry import Column, KindInfo
    from cnai.tuning.admission import experiment_validator
    from cnai.tuning.api import Experiment, Trial
    from cnai.tuning.controller import experiment_controller

    platform.registry.register(
        KindInfo(
            Experiment,
            columns=(
                Column("STATUS", "status.phase"),
                Column("PROGRESS", "status.progress"),
                Column("RUNNING", "status.running"),
                Column("BEST", "status.bestTrial.name"),
                Column("VALUE", "status.bestTrial.values"),
                Column("PRUNED", "status.pruned", wide=True),
                Column("FAILED", "status.failed", wide=True),
            ),
            validators=(experiment_validator(pod_validators(platform.registry)),),
        )
    )
    platform.registry.register(
        KindInfo(
            Trial,
            columns=(
                Column("EXPERIMENT", "spec.experiment"),
                Column("STATUS", "status.phase"),
                Column("VALUES", "status.values"),
                Column("PARAMS", "spec.params", wide=True),
                Column("RUN", "status.runId", wide=True),
            ),
        )
    )
    factories: list[Any] | None = getattr(platform, "controller_factories", None)
    if factories is not None:
        factories.append(experiment_controller)
