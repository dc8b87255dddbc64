"""The model registry's rules over the resource service: names, versions, URIs.

- MLflow allows model names that are not resource names ("Fraud Detector"): such a
  name is kept as ``spec.displayName`` on a valid, stable resource name (lowercased,
  other characters as '-', and a short hash of the original).
- A new version takes the next number, ``MODEL-vN``; two registering at once get two
  numbers (creation decides, retried on a clash).
- ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` and ``models:/NAME/latest`` resolve
  to a ModelVersion, where NAME is the resource or the display name.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from cnai.core.errors import AlreadyExists, BadRequest, Conflict, NotFound
from cnai.core.meta import dns1123_label_error
from cnai.tracking.api import Model, ModelVersion, version_name
from cnai.tracking.validation import MAX_MODEL_NAME

URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>[^/]+)|@(?P<alias>[^/]+))$")


def resource_name(display: str) -> str:
    """A valid, stable resource name for an MLflow model name."""
    if dns1123_label_error(display) is None and len(display) <= MAX_MODEL_NAME:
        return display
    digest = hashlib.sha256(display.encode()).hexdigest()[:8]
    slug = re.sub(r"[^a-z0-9]+", "-", display.lower()).strip("-")[: MAX_MODEL_NAME - 9]
    return f"{slug.rstrip('-')}-{digest}" if slug else f"model-{digest}"


def candidate_names(name: str) -> tuple[str, ...]:
    """Resource names a model called ``name`` may have, to try in order; failing all,
    look for ``name`` as a display name (a model created as a resource may carry any)."""
    return tuple(dict.fromkeys((name, resource_name(name))))


def with_display_name(models: Iterable[Model], name: str) -> Model | None:
    return next((m for m in models if m.spec.display_name == name), None)


async def find_model(service: Any, namespace: str, name: str) -> Model:
    """A Model by resource name or display name."""
    for candidate in candidate_names(name):
        try:
            return Model.model_validate(await service.get("models", namespace, candidate))
        except NotFound:
            continue
    listed = (await service.list("models", namespace)).items
    found = with_display_name((Model.model_validate(o) for o in listed), name)
    if found is not None:
        return found
    raise NotFound(f"registered model {name!r} not found in namespace {namespace}")


async def versions_of(service: Any, namespace: str, model: Model) -> list[ModelVersion]:
    listed = await service.list("modelversions", namespace)
    out = [ModelVersion.model_validate(o) for o in listed.items]
    return sorted(
        (v for v in out if v.spec.model == model.metadata.name), key=lambda v: v.spec.version
    )


async def create_version(
    service: Any, namespace: str, model: Model, spec: dict[str, Any]
) -> ModelVersion:
    """Register the next version of ``model`` with ``spec`` (without model/version)."""
    number = model.status.latest_version + 1
    for _ in range(100):
        body = {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "ModelVersion",
            "metadata": {"name": version_name(model.metadata.name, number)},
            "spec": {**spec, "model": model.metadata.name, "version": number},
        }
        try:
            created = await service.create("modelversions", body, namespace)
        except AlreadyExists:
            number += 1
            continue
        await _bump_latest(service, namespace, model.metadata.name, number)
        return ModelVersion.model_validate(created)
    raise AlreadyExists(f"could not allocate a version number for model {model.display}")


async def _bump_latest(service: Any, namespace: str, name: str, number: int) -> None:
    for _ in range(10):
        current = await service.get("models", namespace, name)
        if current.get("status", {}).get("latestVersion", 0) >= number:
            return
        current.setdefault("status", {})["latestVersion"] = number
        try:
            await service.update("models", current, namespace, name, status=True)
            return
        except Conflict:  # a concurrent update: read again
            continue


async def resolve(service: Any, namespace: str, uri: str) -> ModelVersion:
    """The ModelVersion a ``models:/`` URI names; errors say what did not match."""
    match = URI.match(uri)
    if match is None:
        raise BadRequest(
            f"model URI {uri!r}: must be models:/NAME/VERSION, models:/NAME@ALIAS or "
            "models:/NAME/latest"
        )
    model = await find_model(service, namespace, match["name"])
    if match["alias"] is not None:
        alias = match["alias"]
        if alias not in model.spec.aliases:
            raise NotFound(f"model {model.display} has no alias {alias!r}")
        number = model.spec.aliases[alias]
    elif match["version"] == "latest":
        versions = await versions_of(service, namespace, model)
        if not versions:
            raise NotFound(f"model {model.display} has no versions")
        return versions[-1]
    else:
        try:
            number = int(match["version"])
        except ValueError:
            raise BadRequest(f"model URI {uri!r}: the version must be a number") from None
    try:
        found = await service.get(
            "modelversions", namespace, version_name(model.metadata.name, number)
        )
    except NotFound:
        raise NotFound(f"model {model.display} has no version {number}") from None
    return ModelVersion.model_validate(found)


async def ensure_model(service: Any, namespace: str, name: str) -> Model:
    """The model called ``name``, registered on first use (as MLflow does on the first
    version of a new name)."""
    try:
        return await find_model(service, namespace, name)
    except NotFound:
        pass
    resource = resource_name(name)
    body = {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Model",
        "metadata": {"name": resource},
        "spec": {"displayName": "" if resource == name else name},
    }
    try:
        return Model.model_validate(await service.create("models", body, namespace))
    except AlreadyExists:  # registered meanwhile
        return await find_model(service, namespace, name)


async def register(
    service: Any, namespace: str, name: str, spec: dict[str, Any], aliases: Iterable[str] = ()
) -> ModelVersion:
    """Register the next version of the model called ``name`` (created if new) and point
    ``aliases`` at it."""
    model = await ensure_model(service, namespace, name)
    version = await create_version(service, namespace, model, spec)
    wanted = list(aliases)
    for _ in range(10):
        if not wanted:
            break
        current = Model.model_validate(await service.get("models", namespace, model.metadata.name))
        current.spec.aliases.update(dict.fromkeys(wanted, version.spec.version))
        try:
            await service.update("models", current.to_dict(), namespace, model.metadata.name)
            break
        except Conflict:  # a concurrent update: read again
            continue
    return version
