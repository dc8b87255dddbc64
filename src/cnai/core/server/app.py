"""The API server's ASGI application (Starlette).

Paths follow Kubernetes: ``/apis/cnai.io/v1alpha1/namespaces/{ns}/{plural}[/{name}[/status]]``
for namespaced kinds, ``/apis/cnai.io/v1alpha1/{plural}[/{name}[/status]]`` for
cluster-scoped kinds and for lists across all namespaces. Every endpoint but
``/healthz`` and ``/readyz`` needs a bearer token. The resource routes are plain
Starlette handlers rather than FastAPI's: the hot path is measured in
benchmarks/api_throughput.py, and the OpenAPI document is generated from the kind
registry instead of from handler signatures.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic_core import to_json
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from cnai.core.auth import Principal, TokenAuthority, authorize
from cnai.core.errors import ApiError, BadRequest, Forbidden, MethodNotAllowed, NotFound
from cnai.core.patch import merge_patch
from cnai.core.resources import ResourceService
from cnai.core.runtime import Runtime
from cnai.core.server.body import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware, read_object
from cnai.core.server.metrics import RequestMetrics
from cnai.core.server.openapi import openapi_document
from cnai.core.store.protocol import WatchEvent, WatchEventType
from cnai.core.store.strategy import parse_propagation
from cnai.version import API_GROUP, API_VERSION, GROUP_VERSION, __version__

log = logging.getLogger(__name__)
PREFIX = f"/apis/{API_GROUP}/{API_VERSION}"
JSON = "application/json"


def json_response(data: Any, status: int = 200) -> Response:
    return Response(to_json(data), status_code=status, media_type=JSON)


class ApiServer:
    """Holds the service and token authority that the route handlers use."""

    def __init__(self, service: ResourceService, tokens: TokenAuthority) -> None:
        self.service = service
        self.tokens = tokens
        self.ready = False
        # Paths (by pattern) whose bodies may exceed the API's limit, e.g. artifact
        # uploads, and their own limits; capabilities add to it.
        self.body_limits: list[tuple[re.Pattern[str], int]] = []

    # -- authentication --------------------------------------------------------------

    def principal(self, request: Request) -> Principal:
        return self.authenticate(request.headers.get("authorization"))

    def authenticate(self, authorization: str | None) -> Principal:
        """The caller of an ``Authorization`` header's value; raises Unauthorized."""
        return self.tokens.verify(authorization)

    def _target(self, request: Request, verb: str) -> tuple[str, str | None, str | None]:
        """(plural, namespace, name) of a resource path, authorized for ``verb``."""
        params = request.path_params
        plural = params["plural"]
        name = params.get("name")
        namespace = params.get("ns")
        info = self.service.kind(plural)
        principal = self.principal(request)
        if namespace is not None and not info.namespaced:
            raise NotFound(f"{plural} are cluster-scoped; use {PREFIX}/{plural}")
        if namespace is None and info.namespaced and (name is not None or verb == "create"):
            raise NotFound(f"{plural} are namespaced; use {PREFIX}/namespaces/NAMESPACE/{plural}")
        authorize(
            principal,
            namespace=namespace,
            namespaced=info.namespaced,
            plural=plural,
            name=name,
            verb=verb,
        )
        return plural, namespace, name

    # -- resource handlers -----------------------------------------------------------

    async def collection(self, request: Request) -> Response:
        if request.method == "POST":
            plural, namespace, _ = self._target(request, "create")
            body = await read_object(request)
            created = await self.service.create(plural, body, namespace)
            return json_response(created, 201)
        q = request.query_params
        watching = q.get("watch", "").lower() in ("1", "true")
        plural, namespace, _ = self._target(request, "watch" if watching else "list")
        if watching:
            return self._watch(request, plural, namespace)
        listed = await self.service.list(
            plural, namespace, q.get("labelSelector"), q.get("fieldSelector")
        )
        kind = self.service.kind(plural).kind
        head = to_json(
            {
                "apiVersion": GROUP_VERSION,
                "kind": f"{kind}List",
                "metadata": {"resourceVersion": listed.resource_version},
            }
        )
        # The stored JSON goes out as it is: no parse and re-serialize per object.
        items = ",".join(listed.raw_items()).encode()
        return Response(head[:-1] + b',"items":[' + items + b"]}", media_type=JSON)

    def _watch(self, request: Request, plural: str, namespace: str | None) -> Response:
        q = request.query_params
        timeout = q.get("timeoutSeconds")
        try:
            seconds = float(timeout) if timeout else None
        except ValueError:
            seconds = math.nan  # refused just below, with the rule
        if seconds is not None and not 0 <= seconds < math.inf:
            raise BadRequest("timeoutSeconds: must be a finite, non-negative number")
        events = self.service.watch(
            plural,
            namespace,
            q.get("resourceVersion"),
            q.get("labelSelector"),
            q.get("fieldSelector"),
        )
        return StreamingResponse(_ndjson(events, seconds), media_type="application/x-ndjson")

    async def item(self, request: Request) -> Response:
        method = request.method
        # The status route is .../{name}/status; an object may itself be named "status".
        name_param = request.path_params.get("name")
        status = name_param is not None and request.url.path.endswith(f"/{name_param}/status")
        if method == "GET":
            plural, namespace, name = self._target(request, "get")
            assert name is not None
            return json_response(await self.service.get(plural, namespace, name))
        if method == "DELETE":
            plural, namespace, name = self._target(request, "delete")
            assert name is not None
            q = request.query_params
            # Checked before anything is touched, so a typo deletes nothing.
            policy = parse_propagation(q.get("propagationPolicy"))
            deleted = await self.service.delete(
                plural, namespace, name, q.get("resourceVersion"), propagation=policy
            )
            return json_response(deleted)
        if method in ("PUT", "PATCH"):
            plural, namespace, name = self._target(request, "update")
            assert name is not None
            body = await read_object(request)
            if method == "PATCH":
                current = await self.service.get(plural, namespace, name)
                body = merge_patch(current, body)
            updated = await self.service.update(plural, body, namespace, name, status=status)
            return json_response(updated)
        raise MethodNotAllowed(f"method {method} is not allowed here")

    # -- discovery, auth and health --------------------------------------------------

    async def discovery(self, request: Request) -> Response:
        self.principal(request)
        return json_response(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": GROUP_VERSION,
                "resources": [info.discovery() for info in self.service.registry],
            }
        )

    async def groups(self, request: Request) -> Response:
        self.principal(request)
        return json_response(
            {
                "kind": "APIGroupList",
                "groups": [{"name": API_GROUP, "versions": [{"groupVersion": GROUP_VERSION}]}],
            }
        )

    async def version(self, request: Request) -> Response:
        self.principal(request)
        return json_response({"version": __version__, "api": GROUP_VERSION})

    async def openapi(self, request: Request) -> Response:
        self.principal(request)
        return json_response(openapi_document(self.service.registry))

    async def healthz(self, request: Request) -> Response:
        return Response("ok", media_type="text/plain")

    async def readyz(self, request: Request) -> Response:
        if not self.ready:
            return Response("starting", status_code=503, media_type="text/plain")
        return Response("ok", media_type="text/plain")

    async def whoami(self, request: Request) -> Response:
        p = self.principal(request)
        return json_response({"tokenId": p.token_id, "namespace": p.namespace, "admin": p.is_admin})

    async def tokens_collection(self, request: Request) -> Response:
        p = self.principal(request)
        if not p.is_admin:
            raise Forbidden("only an admin token can manage tokens")
        if request.method == "GET":
            return json_response({"items": [r.to_public() for r in self.tokens.records()]})
        body = await read_object(request)
        namespace = body.get("namespace")
        description = body.get("description", "")
        if namespace is not None and not isinstance(namespace, str):
            raise BadRequest("namespace: must be a string")
        if not isinstance(description, str):
            raise BadRequest("description: must be a string")
        if namespace:
            await self.service.get("namespaces", None, namespace)
        token, record = await self.tokens.issue(namespace or None, description)
        return json_response({**record.to_public(), "token": token}, 201)

    async def token_item(self, request: Request) -> Response:
        p = self.principal(request)
        if not p.is_admin:
            raise Forbidden("only an admin token can manage tokens")
        await self.tokens.revoke(request.path_params["id"])
        return json_response({"status": "Success"})


async def _ndjson(events: AsyncIterator[WatchEvent], seconds: float | None) -> AsyncIterator[bytes]:
    """Watch events as newline-delimited JSON, ending after ``seconds`` if given."""
    it = aiter(events)
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds
    try:
        while deadline is None or loop.time() < deadline:
            # The timeout covers only the wait for the next event, never the yield: a
            # timeout scope open across a yield would cancel whoever is sending. It is a
            # timer handle, not a task per event as asyncio.wait_for would create.
            try:
                async with asyncio.timeout_at(deadline):
                    ev = await anext(it)
            except (TimeoutError, StopAsyncIteration):
                return
            yield _event_line(ev)
    finally:
        await it.aclose()  # type: ignore[attr-defined]


def _event_line(ev: WatchEvent) -> bytes:
    if ev.raw is not None and ev.type is not WatchEventType.ERROR:
        return b'{"type":"' + ev.type.value.encode() + b'","object":' + ev.raw.encode() + b"}\n"
    return to_json({"type": ev.type.value, "object": ev.object}) + b"\n"


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return json_response(exc.to_status(), exc.code)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    err = ApiError("internal error; see the server log")
    return json_response(err.to_status(), 500)


async def _not_found(request: Request, exc: Exception) -> Response:
    code = getattr(exc, "status_code", 404)
    cls = MethodNotAllowed if code == 405 else NotFound
    err = cls(
        f"{request.method} {request.url.path}: no such endpoint"
        if code == 404
        else f"method {request.method} is not allowed on {request.url.path}"
    )
    return json_response(err.to_status(), err.code)


def create_app(
    service: ResourceService,
    tokens: TokenAuthority,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    runtime: Runtime | None = None,
    extra_routes: Callable[[ApiServer], Sequence[BaseRoute]] | None = None,
    metrics: CollectorRegistry | None = None,
) -> tuple[Any, ApiServer]:
    """Build the ASGI app; returns it with the :class:`ApiServer` that holds its state.

    ``extra_routes`` builds the routes capabilities add (see
    :mod:`cnai.core.server.extensions`) once the API server exists. With ``metrics``,
    requests are counted and timed into it (:mod:`cnai.core.server.metrics`)."""
    from cnai.core.server.logs import log_route

    api = ApiServer(service, tokens)
    methods_item = ["GET", "PUT", "PATCH", "DELETE"]
    resource_routes = [
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/readyz", api.readyz, methods=["GET"]),
        Route("/version", api.version, methods=["GET"]),
        Route("/openapi.json", api.openapi, methods=["GET"]),
        Route("/apis", api.groups, methods=["GET"]),
        Route(PREFIX, api.discovery, methods=["GET"]),
        Route("/auth/v1/whoami", api.whoami, methods=["GET"]),
        Route("/auth/v1/tokens", api.tokens_collection, methods=["GET", "POST"]),
        Route("/auth/v1/tokens/{id}", api.token_item, methods=["DELETE"]),
        # Before the namespaced collection, so that .../namespaces/NAME/status is a status.
        Route(PREFIX + "/{plural}/{name}/status", api.item, methods=methods_item),
        Route(PREFIX + "/namespaces/{ns}/{plural}", api.collection, methods=["GET", "POST"]),
        Route(PREFIX + "/namespaces/{ns}/{plural}/{name}", api.item, methods=methods_item),
        Route(PREFIX + "/namespaces/{ns}/{plural}/{name}/status", api.item, methods=methods_item),
        log_route(api, runtime),
        Route(PREFIX + "/{plural}", api.collection, methods=["GET", "POST"]),
        Route(PREFIX + "/{plural}/{name}", api.item, methods=methods_item),
    ]
    routes: list[BaseRoute] = [*(extra_routes(api) if extra_routes else ()), *resource_routes]
    app = Starlette(
        routes=routes,
        exception_handlers={
            ApiError: _api_error,
            404: _not_found,
            405: _not_found,
            Exception: _unexpected,
        },
    )

    def limit_for(path: str) -> int:
        for pattern, limit in api.body_limits:
            if pattern.match(path):
                return limit
        return max_body_bytes

    limited = BodyLimitMiddleware(app, max_body_bytes, limit_for=limit_for)
    if metrics is None:
        return limited, api
    registry = service.registry
    return RequestMetrics(limited, metrics, lambda p: registry.by_plural(p) is not None), api
