"""API admission rules of the registry kinds (Model, ModelVersion)."""

from __future__ import annotations

import math
import re

from cnai.core.errors import FieldError
from cnai.tracking.api import Model, ModelVersion, version_name

MAX_MODEL_NAME = 50  # leaves room for "-vN" in a version's name (63 in all)
# MLflow's alias rule: letters, digits, _ and -; not "latest" and not like a version.
ALIAS = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
VERSION_LIKE = re.compile(r"^[vV]\d+$")


def alias_error(alias: str) -> str | None:
    if not ALIAS.match(alias):
        return "an alias is 1 to 255 letters, digits, '_' or '-'"
    if alias.lower() == "latest" or VERSION_LIKE.match(alias):
        return "'latest' and names like v3 are reserved (they look like versions)"
    return None


def model_rules(model: Model, old: Model | None) -> list[FieldError]:
    errors = []
    if len(model.metadata.name) > MAX_MODEL_NAME:
        errors.append(
            FieldError("metadata.name", f"a model's name is at most {MAX_MODEL_NAME} characters")
        )
    if len(model.spec.display_name) > 256:
        errors.append(FieldError("spec.displayName", "at most 256 characters"))
    for alias, version in model.spec.aliases.items():
        if (why := alias_error(alias)) is not None:
            errors.append(FieldError(f"spec.aliases[{alias}]", why))
        if version < 1:
            errors.append(FieldError(f"spec.aliases[{alias}]", "must be a version number >= 1"))
    return errors


_IMMUTABLE = ("model", "version", "source", "run_id", "format", "signature")


def model_version_rules(mv: ModelVersion, old: ModelVersion | None) -> list[FieldError]:
    errors = []
    spec = mv.spec
    if spec.version < 1:
        errors.append(FieldError("spec.version", "must be >= 1"))
    elif mv.metadata.name != version_name(spec.model, spec.version):
        errors.append(
            FieldError(
                "metadata.name",
                f"must be {version_name(spec.model, spec.version)} (MODEL-vVERSION)",
            )
        )
    if not spec.source:
        errors.append(FieldError("spec.source", "the URI of the version's artifacts is required"))
    for key, value in spec.metrics.items():
        if not math.isfinite(value):
            errors.append(FieldError(f"spec.metrics[{key}]", "must be a finite number"))
    if old is not None:
        for attr in _IMMUTABLE:
            if getattr(spec, attr) != getattr(old.spec, attr):
                path = "spec." + re.sub(r"_(\w)", lambda m: m.group(1).upper(), attr)
                errors.append(FieldError(path, "is immutable once the version exists"))
    return errors
