"""Admission rules for TrainJobs: sizes and ranges, a runnable trainer, what may not change.

The trainer is checked with the Pod kind's own validators (taken from the registry), as
a pod of the gang would be, with field paths under ``spec.trainer``.
"""

from __future__ import annotations

from cnai.core.errors import FieldError
from cnai.core.meta import ObjectMeta
from cnai.core.pods import Pod, PodSpec
from cnai.core.registry import Validator
from cnai.training.api import TrainJob, TrainJobSpec

_POD_FIELDS = {"spec.command": "command", "spec.env": "env", "spec.resources": "resourcesPerNode"}


def _range_errors(spec: TrainJobSpec) -> list[FieldError]:
    t = spec.trainer
    rules = [
        ("spec.trainer.numNodes", t.num_nodes, 1),
        ("spec.trainer.minNodes", t.min_nodes, 1),
        ("spec.trainer.maxNodes", t.max_nodes, 1),
        ("spec.trainer.numProcPerNode", t.num_proc_per_node, 1),
        ("spec.trainer.terminationGracePeriodSeconds", t.termination_grace_period_seconds, 0),
        ("spec.backoffLimit", spec.backoff_limit, 0),
        ("spec.activeDeadlineSeconds", spec.active_deadline_seconds, 1),
        ("spec.ttlSecondsAfterFinished", spec.ttl_seconds_after_finished, 0),
    ]
    errors = [
        FieldError(path, f"must be >= {least}")
        for path, value, least in rules
        if value is not None and value < least
    ]
    if t.num_nodes is not None and t.max_nodes is not None and t.num_nodes != t.max_nodes:
        errors.append(
            FieldError("spec.trainer.maxNodes", "give numNodes or maxNodes, not both different")
        )
    if t.min_nodes is not None and t.min_nodes > t.most_nodes >= 1:
        errors.append(FieldError("spec.trainer.minNodes", f"must be <= {t.most_nodes} nodes"))
    if not t.command:
        errors.append(FieldError("spec.trainer.command", "is required", "FieldValueRequired"))
    for i, rule in enumerate(spec.failure_policy.rules):
        if not rule.on_exit_codes.values:
            path = f"spec.failurePolicy.rules[{i}].onExitCodes.values"
            errors.append(FieldError(path, "needs at least one exit code", "FieldValueRequired"))
    return errors


def _trainer_pod_errors(spec: TrainJobSpec, pod_rules: tuple[Validator, ...]) -> list[FieldError]:
    t = spec.trainer
    pod = Pod(
        metadata=ObjectMeta(name="trainer"),
        spec=PodSpec(command=t.command or ["-"], env=t.env, resources=t.resources_per_node),
    )
    errors = []
    for rule in pod_rules:
        for err in rule(pod, None):
            for prefix, field in _POD_FIELDS.items():
                if err.field.startswith(prefix):
                    path = f"spec.trainer.{field}{err.field[len(prefix) :]}"
                    errors.append(FieldError(path, err.message, err.reason))
    return errors


def _immutability_errors(job: TrainJob, old: TrainJob | None) -> list[FieldError]:
    if old is None:
        return []
    errors = []
    if job.spec.trainer != old.spec.trainer:
        errors.append(FieldError("spec.trainer", "field is immutable"))
    started = old.status.start_time is not None and not old.spec.suspend
    if job.spec.queue != old.spec.queue and started:
        errors.append(FieldError("spec.queue", "may change only while the job is suspended"))
    return errors


def trainjob_validator(pod_rules: tuple[Validator, ...] = ()) -> Validator:
    """The TrainJob validator, checking the trainer with ``pod_rules`` (the Pod kind's)."""

    def validate(job: TrainJob, old: TrainJob | None) -> list[FieldError]:
        return [
            *_range_errors(job.spec),
            *_trainer_pod_errors(job.spec, pod_rules),
            *_immutability_errors(job, old),
        ]

    return validate
