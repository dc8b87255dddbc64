"""``cnai.Client`` and ``cnai.AsyncClient``: the typed Python SDK over the REST API.

Both read the same config file as the CLI (``$CNAI_HOME/config.yaml``). Pass a kind as
a class (``client.get(Secret, "db")`` returns a ``Secret``) or as any name the server
knows (``client.get("secret", "db")`` returns a :class:`GenericResource`).
"""

from __future__ import annotations

import builtins
import copy
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, overload

import httpx

from cnai.core.config import ClientConfig, load_config
from cnai.core.errors import AlreadyExists, ApiError, Conflict, NotFound, Unreachable
from cnai.core.meta import GenericResource, Resource
from cnai.version import API_GROUP, API_VERSION

R = TypeVar("R", bound=Resource)
Kind = type[Resource] | str
PREFIX = f"/apis/{API_GROUP}/{API_VERSION}"
_APPLY_RETRIES = 5
_NON_SPEC = frozenset({"apiVersion", "kind", "metadata", "status"})


@dataclass(frozen=True)
class KindRef:
    """How to reach one kind over the API."""

    kind: str
    plural: str
    namespaced: bool
    model: type[Resource]


@dataclass(frozen=True)
class WatchEvent(Generic[R]):
    """A watch event with the object typed."""

    type: str
    object: R


@dataclass
class ObjectList(Generic[R]):
    """Listed objects and the resourceVersion to watch from."""

    items: list[R]
    resource_version: str


@dataclass(frozen=True)
class ApplyResult:
    """What ``apply`` did to one object: created, configured or unchanged."""

    action: str
    object: Resource


@dataclass
class _Plan:
    """Request-building and response-parsing shared by the sync and async clients."""

    config: ClientConfig
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def headers(self) -> dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": "cnai-client"}
        if self.config.token:
            h["Authorization"] = f"Bearer {self.config.token}"
        return h

    def ref_from_discovery(self, name: str) -> KindRef | None:
        key = name.lower()
        for r in self.resources.values():
            names = {r["name"], r["singularName"], r["kind"].lower(), *r.get("shortNames", [])}
            if key in names:
                return KindRef(r["kind"], r["name"], bool(r["namespaced"]), GenericResource)
        return None

    def set_discovery(self, body: Any) -> None:
        self.resources = {r["name"]: r for r in body.get("resources", [])}

    @staticmethod
    def ref_from_model(model: type[Resource]) -> KindRef:
        return KindRef(model.KIND, model.PLURAL, model.NAMESPACED, model)

    def path(
        self,
        ref: KindRef,
        namespace: str | None,
        name: str | None = None,
        all_namespaces: bool = False,
        status: bool = False,
    ) -> str:
        if ref.namespaced and not all_namespaces:
            base = f"{PREFIX}/namespaces/{namespace or self.config.namespace}/{ref.plural}"
        else:
            base = f"{PREFIX}/{ref.plural}"
        if name is not None:
            base += f"/{name}"
            if status:
                base += "/status"
        return base

    @staticmethod
    def check(resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            try:
                body = resp.json()
            except ValueError:
                body = {"message": resp.text or f"HTTP {resp.status_code}"}
            raise ApiError.from_status(resp.status_code, body)
        return resp.json()

    @staticmethod
    def typed(ref: KindRef, data: Any) -> Resource:
        return ref.model.model_validate(data)

    @staticmethod
    def list_params(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
        params = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        return params

    @staticmethod
    def as_dict(obj: Resource | dict[str, Any]) -> dict[str, Any]:
        return obj.to_dict() if isinstance(obj, Resource) else copy.deepcopy(obj)

    @staticmethod
    def namespace_of(obj: dict[str, Any]) -> str | None:
        return (obj.get("metadata") or {}).get("namespace")

    @staticmethod
    def name_of(obj: dict[str, Any]) -> str:
        name = (obj.get("metadata") or {}).get("name")
        if not name:
            raise ApiError("metadata.name: is required")
        return str(name)


def desired_update(existing: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any]:
    """Apply's merge: the manifest's spec, labels and annotations on the live object."""
    out = {k: v for k, v in existing.items() if k in _NON_SPEC}
    out.update({k: v for k, v in manifest.items() if k not in _NON_SPEC})
    meta = dict(existing.get("metadata") or {})
    mmeta = manifest.get("metadata") or {}
    meta["labels"] = mmeta.get("labels") or {}
    meta["annotations"] = mmeta.get("annotations") or {}
    out["metadata"] = meta
    return out


def _same(existing: dict[str, Any], updated: dict[str, Any]) -> bool:
    def view(o: dict[str, Any]) -> Any:
        m = o.get("metadata") or {}
        return (
            {k: v for k, v in o.items() if k not in _NON_SPEC},
            m.get("labels") or {},
            m.get("annotations") or {},
        )

    return bool(view(existing) == view(updated))


def _resolve_config(
    server: str | None,
    token: str | None,
    namespace: str | None,
    config_path: Path | None,
    context: str | None,
) -> ClientConfig:
    if server:
        return ClientConfig(
            server=server.rstrip("/"), token=token, namespace=namespace or "default"
        )
    cfg = load_config(config_path, context)
    return ClientConfig(
        server=cfg.server,
        token=token or cfg.token,
        namespace=namespace or cfg.namespace,
        name=cfg.name,
    )


def _unreachable(server: str, exc: Exception) -> Unreachable:
    return Unreachable(
        f"cannot reach the cnai API server at {server} ({exc.__class__.__name__}); "
        "is it running? Start it with `cnai up`"
    )


def _delete_params(propagation_policy: str | None) -> dict[str, str]:
    return {} if propagation_policy is None else {"propagationPolicy": str(propagation_policy)}


class Client:
    """Synchronous client. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        namespace: str | None = None,
        *,
        config_path: Path | None = None,
        context: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._plan = _Plan(_resolve_config(server, token, namespace, config_path, context))
        self.config = self._plan.config
        self._http = httpx.Client(
            base_url=self.config.server, headers=self._plan.headers(), timeout=timeout
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise _unreachable(self.config.server, exc) from None
        return self._plan.check(resp)

    def ref(self, kind: Kind) -> KindRef:
        """Resolve a kind class or name (plural, singular, short name) to its API path."""
        if isinstance(kind, type):
            return self._plan.ref_from_model(kind)
        if not self._plan.resources:
            self._plan.set_discovery(self._request("GET", PREFIX))
        found = self._plan.ref_from_discovery(kind)
        if found is None:
            raise NotFound(f'the server doesn\'t have a resource type "{kind}"')
        return found

    def resources(self) -> list[dict[str, Any]]:
        """The server's kinds (discovery), with names, scope and printer columns."""
        self._plan.set_discovery(self._request("GET", PREFIX))
        return list(self._plan.resources.values())

    def version(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/version")
        return result

    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", "/auth/v1/whoami")
        return result

    @overload
    def get(self, kind: type[R], name: str, namespace: str | None = None) -> R: ...
    @overload
    def get(self, kind: str, name: str, namespace: str | None = None) -> GenericResource: ...
    def get(self, kind: Kind, name: str, namespace: str | None = None) -> Resource:
        ref = self.ref(kind)
        return self._plan.typed(ref, self._request("GET", self._plan.path(ref, namespace, name)))

    @overload
    def list(
        self,
        kind: type[R],
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList[R]: ...
    @overload
    def list(
        self,
        kind: str,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList[GenericResource]: ...
    def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList[Any]:
        ref = self.ref(kind)
        body = self._request(
            "GET",
            self._plan.path(ref, namespace, all_namespaces=all_namespaces),
            params=self._plan.list_params(label_selector, field_selector),
        )
        items = [self._plan.typed(ref, i) for i in body.get("items", [])]
        return ObjectList(items, str(body.get("metadata", {}).get("resourceVersion", "")))

    def create(self, obj: R | dict[str, Any], namespace: str | None = None) -> R:
        data = self._plan.as_dict(obj)
        ref = self._ref_of(obj, data)
        ns = namespace or self._plan.namespace_of(data)
        out = self._request("POST", self._plan.path(ref, ns), json=data)
        return self._plan.typed(ref, out)  # type: ignore[return-value]

    def update(self, obj: R | dict[str, Any]) -> R:
        """Replace spec and metadata (status is kept); Conflict if the object moved on."""
        return self._put(obj, status=False)

    def update_status(self, obj: R | dict[str, Any]) -> R:
        """Replace only the status (what controllers do)."""
        return self._put(obj, status=True)

    def _put(self, obj: R | dict[str, Any], *, status: bool) -> R:
        data = self._plan.as_dict(obj)
        ref = self._ref_of(obj, data)
        path = self._plan.path(
            ref, self._plan.namespace_of(data), self._plan.name_of(data), status=status
        )
        return self._plan.typed(ref, self._request("PUT", path, json=data))  # type: ignore[return-value]

    def patch(
        self, kind: Kind, name: str, patch: dict[str, Any], namespace: str | None = None
    ) -> Resource:
        """JSON merge patch (RFC 7386) of one object."""
        ref = self.ref(kind)
        out = self._request(
            "PATCH",
            self._plan.path(ref, namespace, name),
            json=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        return self._plan.typed(ref, out)

    def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
    ) -> Resource:
        """Delete (or mark for deletion while finalizers remain); returns the last state.

        ``propagation_policy`` (Background, Foreground or Orphan) says what happens to the
        objects this one owns; the server's default is Background.
        """
        ref = self.ref(kind)
        path = self._plan.path(ref, namespace, name)
        params = _delete_params(propagation_policy)
        return self._plan.typed(ref, self._request("DELETE", path, params=params))

    def apply(self, obj: Resource | dict[str, Any], namespace: str | None = None) -> ApplyResult:
        """Create, or update spec, labels and annotations keeping status; retries conflicts."""
        manifest = self._plan.as_dict(obj)
        ref = self._ref_of(obj, manifest)
        ns = namespace or self._plan.namespace_of(manifest)
        if ref.namespaced:
            manifest.setdefault("metadata", {})["namespace"] = ns or self.config.namespace
        name = self._plan.name_of(manifest)
        for _ in range(_APPLY_RETRIES):
            try:
                existing = self._request("GET", self._plan.path(ref, ns, name))
            except NotFound:
                try:
                    out = self._request("POST", self._plan.path(ref, ns), json=manifest)
                    return ApplyResult("created", self._plan.typed(ref, out))
                except AlreadyExists:
                    continue
            desired = desired_update(existing, manifest)
            if _same(existing, desired):
                return ApplyResult("unchanged", self._plan.typed(ref, existing))
            try:
                out = self._request("PUT", self._plan.path(ref, ns, name), json=desired)
            except (Conflict, NotFound):
                continue
            action = "unchanged" if _same(existing, out) else "configured"
            return ApplyResult(action, self._plan.typed(ref, out))
        raise Conflict(f"apply of {ref.kind} {name!r} kept conflicting; try again")

    def apply_all(
        self, objs: Iterable[Resource | dict[str, Any]], namespace: str | None = None
    ) -> builtins.list[ApplyResult]:
        return [self.apply(o, namespace) for o in objs]

    def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: float | None = None,
    ) -> Iterator[WatchEvent[Any]]:
        """Stream changes; from ``resource_version`` or, without one, current objects first."""
        ref = self.ref(kind)
        params = self._plan.list_params(label_selector, field_selector)
        params["watch"] = "true"
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        path = self._plan.path(ref, namespace, all_namespaces=all_namespaces)
        try:
            with self._http.stream(
                "GET", path, params=params, timeout=httpx.Timeout(10.0, read=None)
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._plan.check(resp)
                for line in resp.iter_lines():
                    if line:
                        yield _event(ref, line)
        except httpx.TransportError as exc:
            raise _unreachable(self.config.server, exc) from None

    def logs(
        self, name: str, namespace: str | None = None, *, follow: bool = False, offset: int = 0
    ) -> Iterator[bytes]:
        """A pod's output from byte ``offset``; with ``follow``, until its process ends."""
        path = f"{PREFIX}/namespaces/{namespace or self.config.namespace}/pods/{name}/log"
        params = {"offset": str(offset)}
        if follow:
            params["follow"] = "true"
        try:
            with self._http.stream(
                "GET", path, params=params, timeout=httpx.Timeout(10.0, read=None)
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    self._plan.check(resp)
                yield from resp.iter_bytes()
        except httpx.TransportError as exc:
            raise _unreachable(self.config.server, exc) from None

    def create_token(self, namespace: str | None = None, description: str = "") -> dict[str, Any]:
        """A new token (admin only); limited to ``namespace`` when given. Shown once."""
        result: dict[str, Any] = self._request(
            "POST", "/auth/v1/tokens", json={"namespace": namespace, "description": description}
        )
        return result

    def list_tokens(self) -> builtins.list[dict[str, Any]]:
        items: builtins.list[dict[str, Any]] = self._request("GET", "/auth/v1/tokens")["items"]
        return items

    def revoke_token(self, token_id: str) -> None:
        self._request("DELETE", f"/auth/v1/tokens/{token_id}")

    def _ref_of(self, obj: Resource | dict[str, Any], data: dict[str, Any]) -> KindRef:
        if isinstance(obj, Resource) and obj.KIND:
            return self._plan.ref_from_model(type(obj))
        kind = data.get("kind")
        if not isinstance(kind, str) or not kind:
            raise ApiError("kind: is required")
        return self.ref(kind)


def _event(ref: KindRef, line: str) -> WatchEvent[Any]:
    data = json.loads(line)
    etype = data.get("type", "")
    if etype == "ERROR":
        obj = data.get("object") or {}
        raise ApiError.from_status(int(obj.get("code", 500)), obj)
    return WatchEvent(etype, _Plan.typed(ref, data.get("object")))


class AsyncClient:
    """Asynchronous client with the same verbs as :class:`Client`."""

    def __init__(
        self,
        server: str | None = None,
        token: str | None = None,
        namespace: str | None = None,
        *,
        config_path: Path | None = None,
        context: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._plan = _Plan(_resolve_config(server, token, namespace, config_path, context))
        self.config = self._plan.config
        self._http = httpx.AsyncClient(
            base_url=self.config.server, headers=self._plan.headers(), timeout=timeout
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = await self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise _unreachable(self.config.server, exc) from None
        return self._plan.check(resp)

    async def ref(self, kind: Kind) -> KindRef:
        if isinstance(kind, type):
            return self._plan.ref_from_model(kind)
        if not self._plan.resources:
            self._plan.set_discovery(await self._request("GET", PREFIX))
        found = self._plan.ref_from_discovery(kind)
        if found is None:
            raise NotFound(f'the server doesn\'t have a resource type "{kind}"')
        return found

    async def version(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", "/version")
        return result

    @overload
    async def get(self, kind: type[R], name: str, namespace: str | None = None) -> R: ...
    @overload
    async def get(self, kind: str, name: str, namespace: str | None = None) -> GenericResource: ...
    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> Resource:
        ref = await self.ref(kind)
        data = await self._request("GET", self._plan.path(ref, namespace, name))
        return self._plan.typed(ref, data)

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> ObjectList[Any]:
        ref = await self.ref(kind)
        body = await self._request(
            "GET",
            self._plan.path(ref, namespace, all_namespaces=all_namespaces),
            params=self._plan.list_params(label_selector, field_selector),
        )
        items = [self._plan.typed(ref, i) for i in body.get("items", [])]
        return ObjectList(items, str(body.get("metadata", {}).get("resourceVersion", "")))

    async def create(self, obj: R | dict[str, Any], namespace: str | None = None) -> R:
        data = self._plan.as_dict(obj)
        ref = await self._ref_of(obj, data)
        out = await self._request(
            "POST", self._plan.path(ref, namespace or self._plan.namespace_of(data)), json=data
        )
        return self._plan.typed(ref, out)  # type: ignore[return-value]

    async def update(self, obj: R | dict[str, Any]) -> R:
        return await self._put(obj, status=False)

    async def update_status(self, obj: R | dict[str, Any]) -> R:
        return await self._put(obj, status=True)

    async def _put(self, obj: R | dict[str, Any], *, status: bool) -> R:
        data = self._plan.as_dict(obj)
        ref = await self._ref_of(obj, data)
        path = self._plan.path(
            ref, self._plan.namespace_of(data), self._plan.name_of(data), status=status
        )
        return self._plan.typed(ref, await self._request("PUT", path, json=data))  # type: ignore[return-value]

    async def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: str | None = None,
    ) -> Resource:
        ref = await self.ref(kind)
        path = self._plan.path(ref, namespace, name)
        data = await self._request("DELETE", path, params=_delete_params(propagation_policy))
        return self._plan.typed(ref, data)

    async def apply(
        self, obj: Resource | dict[str, Any], namespace: str | None = None
    ) -> ApplyResult:
        manifest = self._plan.as_dict(obj)
        ref = await self._ref_of(obj, manifest)
        ns = namespace or self._plan.namespace_of(manifest)
        if ref.namespaced:
            manifest.setdefault("metadata", {})["namespace"] = ns or self.config.namespace
        name = self._plan.name_of(manifest)
        for _ in range(_APPLY_RETRIES):
            try:
                existing = await self._request("GET", self._plan.path(ref, ns, name))
            except NotFound:
                try:
                    out = await self._request("POST", self._plan.path(ref, ns), json=manifest)
                    return ApplyResult("created", self._plan.typed(ref, out))
                except AlreadyExists:
                    continue
            desired = desired_update(existing, manifest)
            if _same(existing, desired):
                return ApplyResult("unchanged", self._plan.typed(ref, existing))
            try:
                out = await self._request("PUT", self._plan.path(ref, ns, name), json=desired)
            except (Conflict, NotFound):
                continue
            action = "unchanged" if _same(existing, out) else "configured"
            return ApplyResult(action, self._plan.typed(ref, out))
        raise Conflict(f"apply of {ref.kind} {name!r} kept conflicting; try again")

    async def watch(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        all_namespaces: bool = False,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: float | None = None,
    ) -> AsyncIterator[WatchEvent[Any]]:
        ref = await self.ref(kind)
        params = self._plan.list_params(label_selector, field_selector)
        params["watch"] = "true"
        if resource_version:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        path = self._plan.path(ref, namespace, all_namespaces=all_namespaces)
        try:
            async with self._http.stream(
                "GET", path, params=params, timeout=httpx.Timeout(10.0, read=None)
            ) as resp:
                if resp.status_code >= 400:
                    await resp.aread()
                    self._plan.check(resp)
                async for line in resp.aiter_lines():
                    if line:
                        yield _event(ref, line)
        except httpx.TransportError as exc:
            raise _unreachable(self.config.server, exc) from None

    async def resources(self) -> builtins.list[dict[str, Any]]:
        self._plan.set_discovery(await self._request("GET", PREFIX))
        return builtins.list(self._plan.resources.values())

    async def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = await self._request("GET", "/auth/v1/whoami")
        return result

    async def patch(
        self, kind: Kind, name: str, patch: dict[str, Any], namespace: str | None = None
    ) -> Resource:
        ref = await self.ref(kind)
        out = await self._request(
            "PATCH",
            self._plan.path(ref, namespace, name),
            json=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        return self._plan.typed(ref, out)

    async def apply_all(
        self, objs: Iterable[Resource | dict[str, Any]], namespace: str | None = None
    ) -> builtins.list[ApplyResult]:
        return [await self.apply(o, namespace) for o in objs]

    async def list_tokens(self) -> builtins.list[dict[str, Any]]:
        body = await self._request("GET", "/auth/v1/tokens")
        items: builtins.list[dict[str, Any]] = body["items"]
        return items

    async def revoke_token(self, token_id: str) -> None:
        await self._request("DELETE", f"/auth/v1/tokens/{token_id}")

    async def create_token(
        self, namespace: str | None = None, description: str = ""
    ) -> dict[str, Any]:
        result: dict[str, Any] = await self._request(
            "POST", "/auth/v1/tokens", json={"namespace": namespace, "description": description}
        )
        return result

    async def _ref_of(self, obj: Resource | dict[str, Any], data: dict[str, Any]) -> KindRef:
        if isinstance(obj, Resource) and obj.KIND:
            return self._plan.ref_from_model(type(obj))
        kind = data.get("kind")
        if not isinstance(kind, str) or not kind:
            raise ApiError("kind: is required")
        return await self.ref(kind)
