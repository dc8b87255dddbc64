"""ResourceService: the API verbs with admission and namespace rules applied.

The HTTP routes call it, and in-process controllers may too, so that every write,
whoever makes it, passes the same admission chain.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from cnai.core.admission import AdmissionChain
from cnai.core.errors import BadRequest, FieldError, Forbidden, Invalid, NotFound
from cnai.core.kernel import DEFAULT_NAMESPACE
from cnai.core.kinds import NamespacePhase
from cnai.core.registry import KindInfo, Registry
from cnai.core.selectors import FieldSelector, LabelSelector
from cnai.core.store.protocol import Obj, ObjectList, Store, WatchEvent

NAMESPACES = "namespaces"


class ResourceService:
    """Create, read, update and delete objects of registered kinds."""

    def __init__(self, registry: Registry, store: Store) -> None:
        self.registry = registry
        self.store = store
        self.admission = AdmissionChain()

    def kind(self, plural: str) -> KindInfo:
        info = self.registry.by_plural(plural)
        if info is None:
            raise NotFound(f"the server has no resource type {plural!r} in cnai.io/v1alpha1")
        return info

    async def _require_active_namespace(self, namespace: str) -> None:
        try:
            ns = await self.store.get(NAMESPACES, None, namespace)
        except NotFound:
            raise NotFound(
                f"namespace {namespace!r} not found", kind="Namespace", name=namespace
            ) from None
        if ns["metadata"].get("deletionTimestamp"):
            raise Forbidden(
                f"namespace {namespace!r} is terminating; no new objects may be created"
            )

    async def create(self, plural: str, body: Obj, namespace: str | None = None) -> Obj:
        info = self.kind(plural)
        if info.namespaced and namespace is None:
            meta = body.get("metadata") if isinstance(body, dict) else None
            namespace = (meta or {}).get("namespace") or DEFAULT_NAMESPACE
        # Status belongs to controllers: a new object starts with the kind's default status.
        if info.has_status and isinstance(body, dict) and "status" in body:
            body = {k: v for k, v in body.items() if k != "status"}
        obj = self.admission.admit(info, body, namespace=namespace)
        await self._check_references(info, obj, None)
        if info.namespaced:
            await self._require_active_namespace(obj["metadata"]["namespace"])
        return await self.store.create(plural, obj)

    async def _exists(self, plural: str, namespace: str | None, name: str) -> bool:
        try:
            await self.get(plural, namespace, name)
        except NotFound:
            return False
        return True

    async def _check_references(self, info: KindInfo, obj: Obj, old: Obj | None) -> None:
        """Run the kind's reference checks on the admitted object; raise Invalid."""
        if not info.reference_checks:
            return
        typed = info.model.model_validate(obj)
        typed_old = info.model.model_validate(old) if old is not None else None
        errors: list[FieldError] = []
        for check in info.reference_checks:
            errors.extend(await check(typed, typed_old, self._exists))
        if errors:
            raise Invalid.of(errors, info.kind, typed.metadata.name)

    async def get(self, plural: str, namespace: str | None, name: str) -> Obj:
        info = self.kind(plural)
        return await self.store.get(plural, namespace if info.namespaced else None, name)

    async def list(
        self,
        plural: str,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList:
        info = self.kind(plural)
        return await self.store.list(
            plural,
            namespace if info.namespaced else None,
            LabelSelector.parse(label_selector) if label_selector else None,
            FieldSelector.parse(field_selector) if field_selector else None,
        )

    def watch(
        self,
        plural: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> AsyncIterator[WatchEvent]:
        info = self.kind(plural)
        return self.store.watch(
            plural,
            namespace if info.namespaced else None,
            resource_version,
            LabelSelector.parse(label_selector) if label_selector else None,
            FieldSelector.parse(field_selector) if field_selector else None,
        )

    async def update(
        self, plural: str, body: Obj, namespace: str | None, name: str, *, status: bool = False
    ) -> Obj:
        info = self.kind(plural)
        if status and not info.has_status:
            raise NotFound(f"{info.kind} has no status subresource")
        ns = namespace if info.namespaced else None
        old = await self.store.get(plural, ns, name)
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON or YAML object")
        if status and not isinstance(body.get("metadata", {}), dict):
            raise Invalid.of([FieldError("metadata", "must be an object")], info.kind, name)
        merged = self._merge_for_status(old, body) if status else body
        obj = self.admission.admit(info, merged, old, namespace=ns, name=name)
        if status:
            return await self.store.update_status(plural, obj)
        await self._check_references(info, obj, old)
        return await self.store.update(plural, obj)

    @staticmethod
    def _merge_for_status(old: Obj, body: Obj) -> Obj:
        """A status write is validated as the old object with the new status."""
        merged = dict(old)
        meta = dict(old["metadata"])
        rv = (body.get("metadata") or {}).get("resourceVersion")
        if rv:
            meta["resourceVersion"] = rv
        merged["metadata"] = meta
        if "status" in body:
            merged["status"] = body["status"]
        return merged

    async def delete(
        self,
        plural: str,
        namespace: str | None,
        name: str,
        resource_version: str | None = None,
        *,
        propagation: str | None = None,
    ) -> Obj:
        """Delete one object; ``propagation`` is Background (default), Foreground or Orphan."""
        info = self.kind(plural)
        if plural == NAMESPACES and name == DEFAULT_NAMESPACE:
            raise Forbidden("namespace 'default' cannot be deleted")
        ns = namespace if info.namespaced else None
        obj = await self.store.delete(plural, ns, name, resource_version, propagation)
        if plural == NAMESPACES and obj["metadata"].get("deletionTimestamp"):
            status = obj.get("status") or {}
            if status.get("phase") != NamespacePhase.TERMINATING:
                obj = dict(obj, status={**status, "phase": NamespacePhase.TERMINATING.value})
                obj = await self.store.update_status(plural, obj)
        return obj
