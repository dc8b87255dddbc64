"""A Kubernetes-API-shaped HTTP server for tests of cnai's Kubernetes store and runtime.

It speaks the parts of the apiserver's REST contract that cnai relies on, over real
HTTP on a loopback port: generic resources under ``/api/v1`` and
``/apis/{group}/{version}``, namespaced or cluster-scoped, with or without a status
subresource; one global resourceVersion counter; optimistic concurrency; generation;
finalizers, deletionTimestamp and the garbage collector's propagation finalizers;
merge-patch and a simplified server-side apply; watches with bookmarks,
``timeoutSeconds`` and a bounded history that answers a too-old version with a 410
``ERROR`` event; errors as ``Status`` bodies.

Not modelled (the real apiserver does them; cnai's tests do not need them here): the
garbage collector and namespace controller, admission, defaulting and schemas,
``generateName``, namespace existence checks, label-selector
transitions in watches (an object leaving a selector sends nothing; the real server
sends DELETED), list pagination.

All state lives on the server's event loop; methods a test calls from its own thread
(:meth:`KubeApiServer.compact`, :meth:`send_bookmarks`, :meth:`end_watches`,
:meth:`get_object`, :meth:`list_objects`, :meth:`create_object`, :meth:`write_status`)
hop onto that loop. Routes added with ``extra_routes`` run on the loop and reach the
server as ``request.app.state.kube``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import uvicorn
from pydantic_core import from_json, to_json
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cnai.core.errors import ApiError
from cnai.core.patch import merge_patch as patch_merge
from cnai.core.selectors import FieldSelector, LabelSelector
from cnai.runtimes.kubernetes.api import ApiResource

Obj = dict[str, Any]
T = TypeVar("T")

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_PROPAGATION_FINALIZER = {"Foreground": FOREGROUND, "Orphan": ORPHAN, "Background": None}
# Kept from the stored object on every update, as the apiserver does.
_SERVER_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)


class StatusError(Exception):
    """A failed request, answered with a Kubernetes ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = {k: v for k, v in details.items() if v is not None}

    def body(self) -> Obj:
        out: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            out["details"] = self.details
        return out


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _qualified(res: ApiResource) -> str:
    return f"{res.plural}.{res.group}" if res.group else res.plural


def _not_found(res: ApiResource, name: str) -> StatusError:
    msg = f'{_qualified(res)} "{name}" not found'
    return StatusError(404, "NotFound", msg, name=name, group=res.group, kind=res.plural)


def _conflict(res: ApiResource, name: str, why: str) -> StatusError:
    msg = f'Operation cannot be fulfilled on {_qualified(res)} "{name}": {why}'
    return StatusError(409, "Conflict", msg, name=name, group=res.group, kind=res.plural)


def _invalid(res: ApiResource, name: str, path: str, message: str) -> StatusError:
    cause = {"reason": "FieldValueInvalid", "message": message, "field": path}
    return StatusError(
        422,
        "Invalid",
        f'{res.kind} "{name}" is invalid: {path}: {message}',
        name=name,
        group=res.group,
        kind=res.kind,
        causes=[cause],
    )


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 (cnai's own implementation) on a deep copy: stored objects never share
    nested values with what a write returns."""
    return patch_merge(copy.deepcopy(target), patch)


@dataclass(eq=False)
class _Watcher:
    res: ApiResource
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    bookmarks: bool
    queue: asyncio.Queue[Obj | None] = field(default_factory=asyncio.Queue)

    def wants(self, res: ApiResource, obj: Obj) -> bool:
        meta = obj["metadata"]
        return (
            res == self.res
            and (self.namespace is None or meta.get("namespace") == self.namespace)
            and self.labels.matches(meta.get("labels") or {})
            and self.fields.matches(obj)
        )


@dataclass(frozen=True)
class _Target:
    res: ApiResource
    namespace: str | None
    name: str | None
    sub: str | None


class KubeApiServer:
    """In-memory objects of the given resources, served as the apiserver would serve them.

    ``history`` bounds the changes kept for watches; older versions get 410.
    ``bookmark_interval`` (seconds) sends a BOOKMARK to quiet watches that asked for them.
    ``status_on_delete`` names plurals whose DELETE answers with a ``Status`` of success
    instead of the object, as the real server does for Secrets and Events.
    ``expired_as_http`` answers a too-old watch with HTTP 410 instead of a 200 carrying an
    ``ERROR`` event (real servers have done both).
    """

    def __init__(
        self,
        resources: Iterable[ApiResource],
        *,
        history: int = 1000,
        bookmark_interval: float | None = None,
        status_on_delete: Collection[str] = (),
        expired_as_http: bool = False,
        extra_routes: Sequence[BaseRoute] = (),
    ) -> None:
        self.resources = {(r.group, r.version, r.plural): r for r in resources}
        self.history_limit = history
        self.bookmark_interval = bookmark_interval
        self.status_on_delete = frozenset(status_on_delete)
        self.expired_as_http = expired_as_http
        self.rv = 0
        self.compacted = 0  # versions below this are gone from the history
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self._objects: dict[tuple[ApiResource, str, str], Obj] = {}
        self._history: deque[tuple[int, ApiResource, Obj]] = deque()
        self._watchers: set[_Watcher] = set()
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        self.app = Starlette(
            routes=[
                *extra_routes,
                Route("/api/{rest:path}", self._dispatch, methods=methods),
                Route("/apis/{rest:path}", self._dispatch, methods=methods),
            ],
        )
        self.app.state.kube = self
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle, from the test's thread ---------------------------------------------------

    def start(self) -> KubeApiServer:
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            lifespan="off",
            access_log=False,
            log_level="warning",
            http="h11",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        server = self._server = uvicorn.Server(config)

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            await server.serve()

        self._thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert self._thread.is_alive(), "the Kubernetes test server stopped while starting"
            assert time.monotonic() < deadline, "the Kubernetes test server did not start"
            time.sleep(0.005)
        port = server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is None or self._thread is None:
            return
        self.end_watches()
        self._server.should_exit = True
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the Kubernetes test server did not stop"
        self._server = None

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the server's loop, where all state lives, and return its result."""
        assert self._loop is not None, "the server is not running"
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(fn())
            except BaseException as exc:
                done.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return done.result(timeout=5)

    def compact(self) -> int:
        """Forget every change so far, as etcd compaction does; return the new floor."""

        def run() -> int:
            self._history.clear()
            self.compacted = self.rv
            return self.compacted

        return self.call(run)

    def send_bookmarks(self) -> int:
        """Send a BOOKMARK at the current version to every watch that allows them."""

        def run() -> int:
            for w in self._watchers:
                if w.bookmarks:
                    w.queue.put_nowait(self._bookmark(w.res))
            return self.rv

        return self.call(run)

    def end_watches(self) -> None:
        """End every open watch response normally, as the server's own timeout does."""

        def run() -> None:
            for w in self._watchers:
                w.queue.put_nowait(None)

        self.call(run)

    def watch_count(self) -> int:
        return self.call(lambda: len(self._watchers))

    def get_object(self, res: ApiResource, namespace: str | None, name: str) -> Obj | None:
        """A copy of a stored object, or None."""
        return self.call(lambda: copy.deepcopy(self.lookup(res, namespace, name)))

    def list_objects(self, res: ApiResource, namespace: str | None = None) -> list[Obj]:
        """Copies of the stored objects of ``res`` (in ``namespace``, if given), by name."""

        def run() -> list[Obj]:
            return [
                copy.deepcopy(obj)
                for (r, ns, _), obj in sorted(self._objects.items(), key=lambda kv: kv[0][1:])
                if r == res and namespace in (None, ns)
            ]

        return self.call(run)

    def create_object(self, res: ApiResource, obj: Obj) -> Obj:
        """Create ``obj`` as a client would, then write its status, if it has one, as the
        object's own controller would (a kubelet, a node agent); return a copy."""

        def run() -> Obj:
            ns = obj["metadata"].get("namespace") if res.namespaced else None
            created = self._create(_Target(res, ns, None, None), copy.deepcopy(obj))
            if res.has_status and "status" in obj:
                name = created["metadata"]["name"]
                target = _Target(res, ns, name, "status")
                created = self._update(target, {**created, "status": obj["status"]})
            return copy.deepcopy(created)

        return self.call(run)

    def write_status(self, res: ApiResource, namespace: str | None, name: str, status: Obj) -> Obj:
        """Replace an object's status as its controller would (a kubelet moving a Pod to
        Succeeded); watches see the change. Returns a copy."""

        def run() -> Obj:
            target = _Target(res, namespace, name, "status" if res.has_status else None)
            current = self._get(target)
            return copy.deepcopy(self._update(target, {**current, "status": status}))

        return self.call(run)

    # -- state, on the loop --------------------------------------------------------------------

    def lookup(self, res: ApiResource, namespace: str | None, name: str) -> Obj | None:
        return self._objects.get((res, namespace or "", name))

    def _key(self, res: ApiResource, obj: Obj) -> tuple[ApiResource, str, str]:
        meta = obj["metadata"]
        return res, meta.get("namespace") or "", meta["name"]

    def _commit(self, res: ApiResource, kind: str, obj: Obj) -> Obj:
        """Stamp the next version on ``obj``, store or remove it, and tell the watches."""
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        key = self._key(res, obj)
        if kind == "DELETED":
            self._objects.pop(key, None)
        else:
            self._objects[key] = obj
        self._history.append((self.rv, res, {"type": kind, "object": obj}))
        while len(self._history) > self.history_limit:
            self.compacted = self._history.popleft()[0]
        for w in self._watchers:
            if w.wants(res, obj):
                w.queue.put_nowait({"type": kind, "object": obj})
        return obj

    def _bookmark(self, res: ApiResource) -> Obj:
        meta = {"resourceVersion": str(self.rv)}
        obj = {"kind": res.kind, "apiVersion": res.api_version, "metadata": meta}
        return {"type": "BOOKMARK", "object": obj}

    # -- routing -------------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        self.requests.append((request.method, request.url.path, dict(request.query_params)))
        try:
            return await self._handle(request, self._target(request))
        except StatusError as exc:
            return JSONResponse(exc.body(), status_code=exc.code)
        except ApiError as exc:  # cnai's selector parsers
            return JSONResponse(StatusError(exc.code, exc.reason, exc.message).body(), exc.code)

    def _target(self, request: Request) -> _Target:
        segs = [s for s in request.url.path.split("/") if s]
        if segs[0] == "api":
            group, version, rest = "", segs[1] if len(segs) > 1 else "", segs[2:]
        else:
            head = [*segs[1:3], "", ""]
            group, version, rest = head[0], head[1], segs[3:]
        namespace = None
        if (
            len(rest) >= 3
            and rest[0] == "namespaces"
            and (group, version, rest[2]) in self.resources
        ):
            namespace, rest = rest[1], rest[2:]
        res = self.resources.get((group, version, rest[0] if rest else ""))
        if res is None or len(rest) > 3 or (namespace is not None and not res.namespaced):
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and (sub != "status" or not res.has_status):
            raise StatusError(404, "NotFound", "the server could not find the requested resource")
        return _Target(res, namespace, name, sub)

    async def _handle(self, request: Request, t: _Target) -> Response:
        method = request.method
        if t.name is None:
            if method == "GET":
                if request.query_params.get("watch") in ("1", "true"):
                    return self._watch(request, t)
                return JSONResponse(self._list(request, t))
            if method == "POST":
                return JSONResponse(self._create(t, await self._body(request)), 201)
        elif method == "GET":
            return JSONResponse(self._get(t))
        elif method == "PUT":
            return JSONResponse(self._update(t, await self._body(request)))
        elif method == "PATCH":
            return JSONResponse(self._patch(t, request, await self._body(request)))
        elif method == "DELETE" and t.sub is None:
            return self._delete(request, t, await self._body(request, required=False))
        raise StatusError(405, "MethodNotAllowed", f"the server does not allow {method} here")

    @staticmethod
    async def _body(request: Request, *, required: bool = True) -> Obj:
        raw = await request.body()
        if not raw and not required:
            return {}
        try:
            body = from_json(raw)
        except ValueError as exc:
            raise StatusError(400, "BadRequest", f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise StatusError(400, "BadRequest", "the body must be a JSON object")
        return body

    # -- verbs ---------------------------------------------------------------------------------

    def _get(self, t: _Target) -> Obj:
        assert t.name is not None
        obj = self.lookup(t.res, t.namespace, t.name)
        if obj is None:
            raise _not_found(t.res, t.name)
        return obj

    def _selected(self, request: Request, t: _Target) -> tuple[LabelSelector, FieldSelector]:
        labels = LabelSelector.parse(request.query_params.get("labelSelector"))
        fields = FieldSelector.parse(request.query_params.get("fieldSelector"))
        for path, _, _ in fields.terms:
            if path not in ("metadata.name", "metadata.namespace"):
                raise StatusError(400, "BadRequest", f'field label not supported: "{path}"')
        return labels, fields

    def _list(self, request: Request, t: _Target) -> Obj:
        labels, fields = self._selected(request, t)
        w = _Watcher(t.res, t.namespace, labels, fields, bookmarks=False)
        items = [
            self._as_list_item(t.res, obj)
            for (res, _, _), obj in sorted(self._objects.items(), key=lambda kv: kv[0][1:])
            if w.wants(res, obj)
        ]
        return {
            "kind": f"{t.res.kind}List",
            "apiVersion": t.res.api_version,
            "metadata": {"resourceVersion": str(self.rv)},
            "items": items,
        }

    @staticmethod
    def _as_list_item(res: ApiResource, obj: Obj) -> Obj:
        # Built-in kinds come without apiVersion and kind inside a list; custom ones with.
        if res.group:
            return obj
        return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}

    def _create(self, t: _Target, body: Obj) -> Obj:
        res = t.res
        meta = body.get("metadata")
        if not isinstance(meta, dict) or not meta.get("name"):
            raise _invalid(res, "", "metadata.name", "Required value: name is required")
        name = meta["name"]
        if body.get("kind", res.kind) != res.kind:
            raise StatusError(400, "BadRequest", f"kind {body.get('kind')!r} is not {res.kind}")
        if meta.get("resourceVersion"):
            msg = "resourceVersion should not be set on objects to be created"
            raise StatusError(500, "InternalError", msg)
        if res.namespaced:
            if meta.get("namespace") not in (None, t.namespace):
                msg = "the namespace of the provided object does not match the namespace sent on the request"  # noqa: E501 - the apiserver's words
                raise StatusError(400, "BadRequest", msg)
            if t.namespace is None:
                raise StatusError(
                    404, "NotFound", "the server could not find the requested resource"
                )
            meta["namespace"] = t.namespace
        else:
            meta.pop("namespace", None)
        if self.lookup(res, t.namespace, name) is not None:
            msg = f'{_qualified(res)} "{name}" already exists'
            raise StatusError(
                409, "AlreadyExists", msg, name=name, group=res.group, kind=res.plural
            )
        obj = copy.deepcopy(body)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        obj["metadata"].update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        obj["metadata"].pop("deletionTimestamp", None)
        if res.has_status:
            obj.pop("status", None)  # status is written through the subresource only
        return self._commit(res, "ADDED", obj)

    def _update(self, t: _Target, body: Obj) -> Obj:
        res = t.res
        assert t.name is not None
        old = self._get(t)
        meta = body.get("metadata")
        if not isinstance(meta, dict):
            raise _invalid(res, t.name, "metadata", "Required value")
        if meta.get("name", t.name) != t.name:
            msg = f"the name of the object ({meta.get('name')}) does not match the name on the URL ({t.name})"  # noqa: E501 - the apiserver's words
            raise StatusError(400, "BadRequest", msg)
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise _conflict(
                res,
                t.name,
                "the object has been modified; please apply your changes to the latest "
                "version and try again",
            )
        new = self._status_write(old, body) if t.sub else self._spec_write(res, old, body)
        if new == old:
            return old  # a no-op write: no new version, no event
        old_meta, new_meta = old["metadata"], new["metadata"]
        if old_meta.get("deletionTimestamp"):
            added = set(new_meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
            if added:
                why = f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)}"  # noqa: E501 - the apiserver's words
                raise _invalid(res, t.name, "metadata.finalizers", why)
            if not new_meta.get("finalizers"):
                return self._commit(res, "DELETED", new)
        return self._commit(res, "MODIFIED", new)

    @staticmethod
    def _status_write(old: Obj, body: Obj) -> Obj:
        new = copy.deepcopy(old)
        if "status" in body:
            new["status"] = copy.deepcopy(body["status"])
        else:
            new.pop("status", None)
        return new

    @staticmethod
    def _spec_write(res: ApiResource, old: Obj, body: Obj) -> Obj:
        new = copy.deepcopy(body)
        new["apiVersion"], new["kind"] = res.api_version, res.kind
        meta, old_meta = new["metadata"], old["metadata"]
        for key in ("namespace", "name", "resourceVersion", *_SERVER_META):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if res.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        # Generation counts changes of everything but metadata (and status, when status is
        # a subresource of its own).
        ignored = {"metadata", "status"} if res.has_status else {"metadata"}
        if {k: v for k, v in old.items() if k not in ignored} != {
            k: v for k, v in new.items() if k not in ignored
        }:
            meta["generation"] = int(old_meta.get("generation") or 1) + 1
        return new

    def _patch(self, t: _Target, request: Request, patch: Obj) -> Obj:
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype == "application/apply-patch+yaml":
            return self._apply(t, request, patch)
        if ctype != "application/merge-patch+json":
            raise StatusError(
                415, "UnsupportedMediaType", f"the media type {ctype!r} is not supported"
            )
        merged = merge_patch(self._get(t), patch)
        return self._update(t, merged)

    def _apply(self, t: _Target, request: Request, patch: Obj) -> Obj:
        """Server-side apply, simplified: create the object, or merge the applied fields
        into it (managed fields are not tracked, so a field dropped from the applied
        configuration is not removed). ``dryRun=All`` answers without storing."""
        assert t.name is not None
        if not request.query_params.get("fieldManager"):
            raise _invalid(
                t.res, t.name, "fieldManager", "Required value: is required for apply patch"
            )
        if patch.get("metadata", {}).get("name", t.name) != t.name:
            raise StatusError(400, "BadRequest", "the name in the body does not match the URL")
        old = self.lookup(t.res, t.namespace, t.name)
        if request.query_params.get("dryRun") == "All":
            return merge_patch(copy.deepcopy(old), patch) if old else copy.deepcopy(patch)
        if old is None:
            return self._create(_Target(t.res, t.namespace, None, None), copy.deepcopy(patch))
        return self._update(t, merge_patch(copy.deepcopy(old), patch))

    def _delete(self, request: Request, t: _Target, options: Obj) -> Response:
        res = t.res
        assert t.name is not None
        old = self._get(t)
        pre = options.get("preconditions") or {}
        for field_name, meta_key in (("resourceVersion", "resourceVersion"), ("uid", "uid")):
            want, have = pre.get(field_name), old["metadata"].get(meta_key)
            if want and want != have:
                why = f"Precondition failed: {field_name[0].upper()}{field_name[1:]} in precondition: {want}, {field_name} in object meta: {have}"  # noqa: E501 - the apiserver's words
                raise _conflict(res, t.name, why)
        policy = options.get("propagationPolicy") or request.query_params.get("propagationPolicy")
        if policy is not None and policy not in _PROPAGATION_FINALIZER:
            raise _invalid(res, t.name, "propagationPolicy", f"Unsupported value: {policy!r}")
        finalizers = list(old["metadata"].get("finalizers") or ())
        wanted = _PROPAGATION_FINALIZER.get(policy or "Background")
        if wanted is not None:
            finalizers = [f for f in finalizers if f not in (FOREGROUND, ORPHAN)] + [wanted]
        if not finalizers:
            gone = self._commit(res, "DELETED", copy.deepcopy(old))
            if res.plural in self.status_on_delete:
                details = {"name": t.name, "kind": res.plural, "uid": gone["metadata"]["uid"]}
                body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
                return JSONResponse({**body, "details": details})
            return JSONResponse(gone)
        if old["metadata"].get("deletionTimestamp") and finalizers == old["metadata"].get(
            "finalizers"
        ):
            return JSONResponse(old, 202)
        new = copy.deepcopy(old)
        new["metadata"].setdefault("deletionTimestamp", _now())
        new["metadata"]["deletionGracePeriodSeconds"] = 0
        new["metadata"]["finalizers"] = finalizers
        return JSONResponse(self._commit(res, "MODIFIED", new), 202)

    # -- watch ---------------------------------------------------------------------------------

    def _watch(self, request: Request, t: _Target) -> Response:
        q = request.query_params
        labels, fields = self._selected(request, t)
        w = _Watcher(
            t.res, t.namespace, labels, fields, q.get("allowWatchBookmarks") in ("1", "true")
        )
        since = q.get("resourceVersion") or "0"
        if not since.isdigit():
            raise StatusError(400, "BadRequest", f"invalid resourceVersion {since!r}")
        if since == "0":
            initial = [
                {"type": "ADDED", "object": obj}
                for (res, _, _), obj in sorted(
                    self._objects.items(), key=lambda kv: int(kv[1]["metadata"]["resourceVersion"])
                )
                if w.wants(res, obj)
            ]
        elif int(since) < self.compacted:
            expired = StatusError(
                410, "Expired", f"too old resource version: {since} ({self.compacted + 1})"
            )
            if self.expired_as_http:
                raise expired
            return StreamingResponse(
                iter([to_json({"type": "ERROR", "object": expired.body()}) + b"\n"]),
                media_type="application/json",
            )
        else:
            initial = [
                ev
                for rv, res, ev in self._history
                if rv > int(since) and w.wants(res, ev["object"])
            ]
        # Registered before this method returns (no await in between): nothing is missed.
        self._watchers.add(w)
        timeout = float(q["timeoutSeconds"]) if q.get("timeoutSeconds") else None
        return StreamingResponse(self._stream(w, initial, timeout), media_type="application/json")

    async def _stream(
        self, w: _Watcher, initial: list[Obj], timeout: float | None
    ) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout is not None else None
        try:
            for item in initial:
                yield to_json(item) + b"\n"
            while True:
                ev: Obj | None
                waits = [self.bookmark_interval if w.bookmarks else None]
                if deadline is not None:
                    waits.append(max(0.0, deadline - loop.time()))
                wait = min((x for x in waits if x is not None), default=None)
                try:
                    ev = await asyncio.wait_for(w.queue.get(), wait)
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        return
                    ev = self._bookmark(w.res)
                if ev is None:
                    return
                yield to_json(ev) + b"\n"
        finally:
            self._watchers.discard(w)


@contextmanager
def serve(resources: Iterable[ApiResource], **kwargs: Any) -> Iterator[KubeApiServer]:
    """A running :class:`KubeApiServer` for the duration of a ``with`` block."""
    server = KubeApiServer(resources, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()
