"""The Store protocol over the Kubernetes API: operator mode's object store.

In operator mode cnai's API server, controllers and scheduler run in a cluster and keep
their objects in the Kubernetes API server: cnai's kinds as custom resources of
``cnai.io/v1alpha1`` (same plurals; see :mod:`cnai.runtimes.kubernetes.crds`), and the
kernel's Namespace, Secret and Event as Kubernetes' own core/v1 objects, whose schemas
cnai's match. Callers always see cnai's ``apiVersion``; the translation happens here.

Kubernetes does server-side what the SQLite store does itself: uid, generation,
creationTimestamp, resourceVersion, finalizers and deletionTimestamp, propagation
finalizers. In operator mode Kubernetes' own garbage collector (ownerReferences) and
namespace controller do the work that cnai's run embedded.

Differences a caller may notice: a create of a kind with a status subresource that
carries a status is two writes (Kubernetes drops status on create; the store writes it
through ``/status`` next, as the protocol keeps it), so watchers see ADDED then MODIFIED;
field selectors are applied here, not by the server (custom resources support only
``metadata.name`` and ``metadata.namespace`` there).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from typing import Any

from cnai.core.errors import (
    ApiError,
    BadRequest,
    Gone,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
)
from cnai.core.registry import Registry
from cnai.core.selectors import FieldSelector, LabelSelector, Requirement
from cnai.core.store import strategy
from cnai.core.store.protocol import Obj, ObjectList, WatchEvent, WatchEventType
from cnai.runtimes.kubernetes.api import ApiResource, KubeApi, error_from_status
from cnai.runtimes.kubernetes.crds import CORE_KINDS
from cnai.version import API_GROUP, API_VERSION, GROUP_VERSION

log = logging.getLogger(__name__)

# cnai kinds stored as Kubernetes' own core/v1 objects (no CRD is generated for these).
CORE_PLURALS = frozenset(CORE_KINDS)
# Metadata Kubernetes writes that cnai's ObjectMeta has no field for (it refuses unknown
# fields): server-side apply's bookkeeping, and the grace period the apiserver sets (0)
# on every object deleted while it has finalizers. Nothing in cnai reads them, and an
# update that omits them leaves the server's values as they were.
_KUBE_ONLY_META = frozenset({"managedFields", "deletionGracePeriodSeconds"})
# The server ends each watch after this long, and the store re-watches from the last
# version it saw: a half-dead connection cannot hold a watch forever.
WATCH_TIMEOUT_S = 300


def resources_for(registry: Registry) -> dict[str, ApiResource]:
    """Where each registered kind lives on Kubernetes, by cnai plural."""
    out: dict[str, ApiResource] = {}
    for info in registry:
        core = info.plural in CORE_PLURALS
        out[info.plural] = ApiResource(
            group="" if core else API_GROUP,
            version="v1" if core else API_VERSION,
            plural=info.plural,
            kind=info.kind,
            namespaced=info.namespaced,
            has_status=info.has_status,
        )
    return out


def label_selector_text(selector: LabelSelector) -> str:
    """The selector in Kubernetes' query syntax (``a=b,c in (x,y),!d``)."""
    return ",".join(_requirement_text(r) for r in selector.requirements)


def _requirement_text(r: Requirement) -> str:
    values = sorted(r.values)
    if r.op == "exists":
        return r.key
    if r.op == "!exists":
        return f"!{r.key}"
    if r.op in ("=", "!=") and len(values) == 1:
        return f"{r.key}{r.op}{values[0]}"
    op = "notin" if r.op in ("!=", "notin") else "in"
    return f"{r.key} {op} ({','.join(values)})"


def _rv_int(obj: Obj) -> int:
    """A version as a number; Kubernetes calls it opaque, but etcd's are numeric."""
    rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(rv) if rv.isdigit() else 0


class KubernetesStore:
    """Store protocol over one Kubernetes API server (see the module docstring)."""

    def __init__(
        self,
        api: KubeApi,
        resources: Mapping[str, ApiResource],
        *,
        watch_timeout: int = WATCH_TIMEOUT_S,
    ) -> None:
        self.api = api
        self.resources = dict(resources)
        self.watch_timeout = watch_timeout
        self._closed = False
        self._watches_ended = False

    def _resource(self, plural: str) -> ApiResource:
        res = self.resources.get(plural)
        if res is None:
            raise NotFound(f"the Kubernetes store does not serve {plural!r}")
        return res

    @staticmethod
    def _namespace(res: ApiResource, namespace: str | None, name: object) -> str | None:
        """The namespace to address; a namespaced object without one cannot exist."""
        if res.namespaced and not namespace:
            raise NotFound(f"{res.plural} {name!r} not found: no namespace given")
        return namespace or None

    # -- translation ------------------------------------------------------------------------

    @staticmethod
    def _to_kube(res: ApiResource, obj: Obj) -> Obj:
        out = dict(obj)
        out["apiVersion"] = res.api_version
        out["kind"] = res.kind
        if res.plural == "namespaces":
            out.pop("spec", None)  # cnai's is empty; Kubernetes keeps its own finalizers there
        return out

    @staticmethod
    def _from_kube(res: ApiResource, obj: Obj) -> Obj:
        out = dict(obj)
        # List items of built-in kinds come without apiVersion and kind.
        out["apiVersion"] = GROUP_VERSION
        out.setdefault("kind", res.kind)
        if res.plural == "namespaces":
            # spec.finalizers ("kubernetes") is the namespace controller's business; cnai's
            # Namespace has no spec, and its own finalizer works through metadata.
            out.pop("spec", None)
        meta = out.get("metadata")
        if isinstance(meta, dict) and not _KUBE_ONLY_META.isdisjoint(meta):
            out["metadata"] = {k: v for k, v in meta.items() if k not in _KUBE_ONLY_META}
        return out

    # -- Store protocol -----------------------------------------------------------------------

    async def create(self, resource: str, obj: Obj) -> Obj:
        res = self._resource(resource)
        body = self._to_kube(res, obj)
        meta = body["metadata"] = dict(obj.get("metadata") or {})
        # Kubernetes refuses a create that names a version, and assigns the rest itself.
        for key in ("resourceVersion", "uid", "creationTimestamp", "deletionTimestamp"):
            meta.pop(key, None)
        created = await self.api.create(res, body)
        status = obj.get("status")
        if res.has_status and status and created.get("status") != status:
            # Kubernetes drops status on create when status is a subresource; the protocol
            # keeps what the client sent, so write it next.
            created = await self.api.replace(res, {**created, "status": status}, "status")
        return self._from_kube(res, created)

    async def get(self, resource: str, namespace: str | None, name: str) -> Obj:
        res = self._resource(resource)
        return self._from_kube(
            res, await self.api.get(res, self._namespace(res, namespace, name), name)
        )

    async def list(
        self,
        resource: str,
        namespace: str | None = None,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
    ) -> ObjectList:
        res = self._resource(resource)
        params = {"labelSelector": label_selector_text(label_selector)} if label_selector else None
        listed = await self.api.list(res, namespace, params)
        items = [self._from_kube(res, o) for o in listed.get("items") or ()]
        if field_selector:
            items = [o for o in items if field_selector.matches(o)]
        rv = str((listed.get("metadata") or {}).get("resourceVersion") or "")
        return ObjectList(items, rv)

    def _check_address(self, res: ApiResource, obj: Obj) -> None:
        meta = obj.get("metadata") or {}
        if not meta.get("name"):
            raise BadRequest(f"metadata.name: required to update a {res.kind}")
        self._namespace(res, meta.get("namespace"), meta["name"])

    async def update(self, resource: str, obj: Obj) -> Obj:
        res = self._resource(resource)
        self._check_address(res, obj)
        return self._from_kube(res, await self.api.replace(res, self._to_kube(res, obj)))

    async def update_status(self, resource: str, obj: Obj) -> Obj:
        res = self._resource(resource)
        if not res.has_status:
            raise MethodNotAllowed(
                f"{resource} has no status subresource on Kubernetes; write it with update"
            )
        self._check_address(res, obj)
        updated = await self.api.replace(res, self._to_kube(res, obj), "status")
        return self._from_kube(res, updated)

    async def delete(
        self,
        resource: str,
        namespace: str | None,
        name: str,
        resource_version: str | None = None,
        propagation: str | None = None,
    ) -> Obj:
        res = self._resource(resource)
        options: Obj = {}
        if propagation is not None:
            options["propagationPolicy"] = strategy.parse_propagation(propagation).value
        if resource_version:
            options["preconditions"] = {"resourceVersion": resource_version}
        last = await self.api.delete(res, self._namespace(res, namespace, name), name, options)
        if last.get("kind") == "Status":
            # Some built-in kinds (Secret, Event) answer a completed delete with a Status
            # instead of the object: rebuild what it says about the object.
            return self._from_kube(res, self._from_status(res, namespace, name, last))
        return self._from_kube(res, last)

    @staticmethod
    def _from_status(res: ApiResource, namespace: str | None, name: str, status: Obj) -> Obj:
        meta: dict[str, Any] = {"name": name}
        if res.namespaced and namespace:
            meta["namespace"] = namespace
        uid = (status.get("details") or {}).get("uid")
        if uid:
            meta["uid"] = uid
        return {"kind": res.kind, "metadata": meta}

    async def watch(
        self,
        resource: str,
        namespace: str | None = None,
        resource_version: str | None = None,
        label_selector: LabelSelector | None = None,
        field_selector: FieldSelector | None = None,
    ) -> AsyncIterator[WatchEvent]:
        # 1. Without a version: the current objects as ADDED, then changes after the list.
        # 2. Watch from the last version seen; when the server ends the response (its
        #    timeoutSeconds), watch again from there, so only close() or Gone ends this.
        res = self._resource(resource)
        rv = resource_version or ""
        if rv in ("", "0"):
            listed = await self.list(resource, namespace, label_selector, field_selector)
            for obj in listed.items:
                yield WatchEvent(WatchEventType.ADDED, obj, resource, _rv_int(obj))
            rv = listed.resource_version
        params: dict[str, str | int | bool] = {
            "allowWatchBookmarks": "true",
            "timeoutSeconds": self.watch_timeout,
        }
        if label_selector:
            params["labelSelector"] = label_selector_text(label_selector)
        while not (self._closed or self._watches_ended):
            events = self.api.watch(
                res,
                namespace,
                {**params, "resourceVersion": rv},
                # Past the server's own timeout, silence means the connection is dead.
                read_timeout=self.watch_timeout + 30,
            )
            try:
                async with aclosing(events):
                    async for raw in events:
                        ev = self._event(res, resource, raw)
                        rv = str(ev.object["metadata"]["resourceVersion"])
                        if self._wanted(ev, field_selector):
                            yield ev
            except ApiError:
                if self._closed or self._watches_ended:
                    return  # the stream was closed under it by close() or end_watches()
                raise
            log.debug("watch of %s ended by the server at %s; watching again", resource, rv)

    @staticmethod
    def _wanted(ev: WatchEvent, field_selector: FieldSelector | None) -> bool:
        if not field_selector or ev.type is WatchEventType.BOOKMARK:
            return True
        return field_selector.matches(ev.object)

    def _event(self, res: ApiResource, resource: str, raw: Obj) -> WatchEvent:
        kind, obj = raw.get("type"), raw.get("object")
        if kind == "ERROR":
            status = obj if isinstance(obj, dict) else {}
            code = int(status.get("code") or 500)
            if code == Gone.code:
                raise Gone(str(status.get("message") or f"watch of {resource}: version expired"))
            raise error_from_status(code, status, f"watch of {resource}")
        try:
            ev_type = WatchEventType(str(kind))
        except ValueError:
            raise ServiceUnavailable(f"watch of {resource}: unknown event type {kind!r}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
            raise ServiceUnavailable(f"watch of {resource}: a {kind} event without an object")
        if ev_type is not WatchEventType.BOOKMARK:
            obj = self._from_kube(res, obj)
        return WatchEvent(ev_type, obj, resource, _rv_int(obj))

    async def end_watches(self) -> None:
        """End every open watch (and any started later) as :meth:`close` does, while other
        requests go on: the API server's first step when it shuts down (the SQLite store's
        ``broadcaster.close_all``), so its clients' watches end cleanly and at once."""
        self._watches_ended = True
        await self.api.end_watches()

    async def close(self) -> None:
        self._closed = True
        await self.api.close()
