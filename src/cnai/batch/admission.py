"""Admission rules for Jobs: ranges, a runnable pod template, and what may not change.

The template is checked with the Pod kind's own validators (taken from the registry),
so a Job is rejected at create time for anything its pods would be rejected for later;
their field paths are prefixed with ``spec.template.``.
"""

from __future__ import annotations

from cnai.batch.api import RESERVED_LABELS, Job, JobSpec
from cnai.core.errors import FieldError
from cnai.core.meta import ObjectMeta, label_key_error, label_value_error
from cnai.core.pods import Pod
from cnai.core.registry import Registry, Validator

PodValidators = tuple[Validator, ...]


def _range_errors(spec: JobSpec) -> list[FieldError]:
    rules = [
        ("spec.parallelism", spec.parallelism, 0),
        ("spec.completions", spec.completions, 1),
        ("spec.backoffLimit", spec.backoff_limit, 0),
        ("spec.activeDeadlineSeconds", spec.active_deadline_seconds, 1),
        ("spec.ttlSecondsAfterFinished", spec.ttl_seconds_after_finished, 0),
        ("spec.minParallelism", spec.min_parallelism, 1),
    ]
    errors = [
        FieldError(path, f"must be >= {least}")
        for path, value, least in rules
        if value is not None and value < least
    ]
    if spec.min_parallelism is not None and spec.min_parallelism > spec.parallelism:
        message = f"must be <= parallelism ({spec.parallelism})"
        errors.append(FieldError("spec.minParallelism", message))
    return errors


def _template_meta_errors(spec: JobSpec) -> list[FieldError]:
    errors = []
    meta = spec.template.metadata
    for key, value in meta.labels.items():
        where = f"spec.template.metadata.labels.{key}"
        if key in RESERVED_LABELS:
            errors.append(FieldError(where, "is set by the job controller"))
        elif err := label_key_error(key) or label_value_error(value):
            errors.append(FieldError(where, err))
    for key in meta.annotations:
        if err := label_key_error(key):
            errors.append(FieldError(f"spec.template.metadata.annotations.{key}", err))
    return errors


def _template_pod_errors(spec: JobSpec, pod_rules: PodValidators) -> list[FieldError]:
    pod = Pod(metadata=ObjectMeta(name="template"), spec=spec.template.spec)
    return [
        FieldError(f"spec.template.{err.field}", err.message, err.reason)
        for rule in pod_rules
        for err in rule(pod, None)
    ]


def _immutability_errors(job: Job, old: Job | None) -> list[FieldError]:
    if old is None:
        return []
    errors = []
    if job.spec.template != old.spec.template:
        errors.append(FieldError("spec.template", "field is immutable"))
    if job.spec.completions != old.spec.completions:
        errors.append(FieldError("spec.completions", "field is immutable"))
    # As in Kueue: a job may move to another queue only while it is not running.
    started = old.status.start_time is not None and not old.spec.suspend
    if job.spec.queue != old.spec.queue and started:
        errors.append(FieldError("spec.queue", "may change only while the job is suspended"))
    return errors


def job_validator(pod_rules: PodValidators = ()) -> Validator:
    """The Job validator, checking the template with ``pod_rules`` (the Pod kind's)."""

    def validate(job: Job, old: Job | None) -> list[FieldError]:
        return [
            *_range_errors(job.spec),
            *_template_meta_errors(job.spec),
            *_template_pod_errors(job.spec, pod_rules),
            *_immutability_errors(job, old),
        ]

    return validate


def pod_validators(registry: Registry) -> PodValidators:
    """The Pod kind's validators, or none if the registry has no Pod kind."""
    info = registry.by_plural("pods")
    return tuple(info.validators) if info is not None else ()
