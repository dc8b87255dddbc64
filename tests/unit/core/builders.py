"""Fluent builders and fakes for the kernel's unit tests (in the manner of Kueue's wrappers).

``make_secret("db").ns("team-a").data(password="s3cret").build()`` returns the wire dict
a client would send; every builder method returns the builder, so a test reads as one
sentence. :class:`FakeClock` is the injected clock: tests move time, nothing sleeps.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from cnai.version import GROUP_VERSION

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


class FakeClock:
    """A clock that only moves when the test says so."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def iso(when: datetime) -> str:
    """A timestamp as the store writes it (seconds, Z suffix)."""
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectBuilder:
    """Builds one object as wire data (camelCase keys)."""

    def __init__(self, kind: str, name: str, namespace: str | None) -> None:
        meta: dict[str, Any] = {"name": name}
        if namespace is not None:
            meta["namespace"] = namespace
        self._obj: dict[str, Any] = {"apiVersion": GROUP_VERSION, "kind": kind, "metadata": meta}

    @property
    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = self._obj["metadata"]
        return meta

    def ns(self, namespace: str | None) -> Self:
        if namespace is None:
            self._meta.pop("namespace", None)
        else:
            self._meta["namespace"] = namespace
        return self

    def labels(self, mapping: Mapping[str, str] | None = None, **labels: str) -> Self:
        self._meta.setdefault("labels", {}).update({**(mapping or {}), **labels})
        return self

    def annotations(self, mapping: Mapping[str, str] | None = None, **notes: str) -> Self:
        self._meta.setdefault("annotations", {}).update({**(mapping or {}), **notes})
        return self

    def finalizers(self, *names: str) -> Self:
        self._meta["finalizers"] = list(names)
        return self

    def owned_by(
        self, owner: Mapping[str, Any], *, block: bool = False, controller: bool = False
    ) -> Self:
        """Add an ownerReference to a stored object (its kind, name and uid)."""
        ref = {
            "apiVersion": GROUP_VERSION,
            "kind": owner["kind"],
            "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"],
        }
        if block:
            ref["blockOwnerDeletion"] = True
        if controller:
            ref["controller"] = True
        self._meta.setdefault("ownerReferences", []).append(ref)
        return self

    def owner_ref(self, kind: str, name: str, uid: str) -> Self:
        """Add an ownerReference to an object that need not exist."""
        ref = {"apiVersion": GROUP_VERSION, "kind": kind, "name": name, "uid": uid}
        self._meta.setdefault("ownerReferences", []).append(ref)
        return self

    def rv(self, version: str) -> Self:
        self._meta["resourceVersion"] = version
        return self

    def uid(self, uid: str) -> Self:
        self._meta["uid"] = uid
        return self

    def generate_name(self, prefix: str) -> Self:
        self._meta.pop("name", None)
        self._meta["generateName"] = prefix
        return self

    def without_name(self) -> Self:
        self._meta.pop("name", None)
        return self

    def without_metadata(self) -> Self:
        self._obj.pop("metadata")
        return self

    def api_version(self, version: str | None) -> Self:
        return self.field("apiVersion", version)

    def kind(self, kind: str | None) -> Self:
        return self.field("kind", kind)

    def spec(self, **fields: Any) -> Self:
        self._obj.setdefault("spec", {}).update(fields)
        return self

    def status(self, **fields: Any) -> Self:
        self._obj.setdefault("status", {}).update(fields)
        return self

    def field(self, key: str, value: Any) -> Self:
        """Set (or, with None, remove) any top-level field."""
        if value is None:
            self._obj.pop(key, None)
        else:
            self._obj[key] = value
        return self

    def meta(self, key: str, value: Any) -> Self:
        self._meta[key] = value
        return self

    def build(self) -> dict[str, Any]:
        return copy.deepcopy(self._obj)


class SecretBuilder(ObjectBuilder):
    def data(self, **values: str) -> Self:
        """Plain values, base64-encoded as a client would send them."""
        self._obj.setdefault("data", {}).update({k: b64(v) for k, v in values.items()})
        return self

    def raw_data(self, mapping: Mapping[str, Any]) -> Self:
        """Values sent exactly as given (to submit invalid data)."""
        self._obj.setdefault("data", {}).update(mapping)
        return self

    def string_data(self, mapping: Mapping[str, Any] | None = None, **values: Any) -> Self:
        self._obj.setdefault("stringData", {}).update({**(mapping or {}), **values})
        return self

    def immutable(self, value: bool = True) -> Self:
        self._obj["immutable"] = value
        return self


class EventBuilder(ObjectBuilder):
    def about(self, kind: str, name: str, namespace: str | None = "default") -> Self:
        ref: dict[str, Any] = {"kind": kind, "name": name}
        if namespace is not None:
            ref["namespace"] = namespace
        self._obj["involvedObject"] = ref
        return self

    def reason(self, reason: str, message: str = "") -> Self:
        self._obj["reason"] = reason
        self._obj["message"] = message
        return self


def make_obj(kind: str, name: str, namespace: str | None = "default") -> ObjectBuilder:
    """Any object (the store does not care which kind)."""
    return ObjectBuilder(kind, name, namespace)


def make_widget(name: str, namespace: str | None = "default") -> ObjectBuilder:
    """A made-up namespaced kind for store tests (plural ``widgets``)."""
    return ObjectBuilder("Widget", name, namespace)


def make_secret(name: str, namespace: str | None = "default") -> SecretBuilder:
    return SecretBuilder("Secret", name, namespace)


def make_namespace(name: str) -> ObjectBuilder:
    return ObjectBuilder("Namespace", name, None)


def make_event(name: str, namespace: str | None = "default") -> EventBuilder:
    return EventBuilder("Event", name, namespace).about("Pod", "p")


def make_pod(name: str, namespace: str | None = "default") -> ObjectBuilder:
    """A pod as the store holds it (status included, as a runtime would write it)."""
    return ObjectBuilder("Pod", name, namespace).spec(command=["true"])
