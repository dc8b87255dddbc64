"""An async client for the Kubernetes REST API, shared by the Kubernetes store and runtime.

Why httpx and not the official client's API classes: in operator mode the store keeps
dozens of watches open at once (one per kind for the informers, the garbage collector
and every API watch), all long-lived, on one event loop. The official client's sync API
would pin one thread per open watch and its generated models cost a conversion per
object; cnai's objects are plain dicts already. The official client is still used, and
only lazily in :meth:`KubeApi.load`, for what it does well: reading kubeconfig files,
in-cluster service-account credentials and exec/OIDC credential plugins.

Errors come back as :mod:`cnai.core.errors` types rebuilt from Kubernetes' ``Status``
bodies, so a 409 from the cluster reads exactly like a 409 from the SQLite store.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic_core import from_json, to_json

from cnai.core.errors import (
    ApiError,
    BadRequest,
    ServiceUnavailable,
    Unreachable,
)

log = logging.getLogger(__name__)

Obj = dict[str, Any]
Params = Mapping[str, str | int | bool]

MERGE_PATCH = "application/merge-patch+json"
# Requests other than watches and log streams: generous, since a slow apiserver under
# load is normal, but bounded, so a dead connection surfaces as an error.
DEFAULT_TIMEOUT = 30.0


class KubeConfigError(Exception):
    """No usable cluster credentials (no kubeconfig, unknown context, bad in-cluster setup)."""


@dataclass(frozen=True)
class ApiResource:
    """One Kubernetes resource type: where it lives in the REST tree and what it is.

    ``group`` is "" for the core group (``/api/v1``). ``has_status`` says whether it has a
    ``status`` subresource (then a PUT of the object ignores status, and status is written
    through ``.../status`` only).
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    has_status: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The URL path of the collection, one object or one object's subresource.

        A namespaced resource with ``namespace`` None is the list across all namespaces;
        a cluster-scoped resource ignores ``namespace``.
        """
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            root += f"/namespaces/{namespace}"
        elif self.namespaced and name is not None:
            raise ValueError(f"{self.plural} {name!r}: a namespaced object needs a namespace")
        if name is None:
            if subresource is not None:
                raise ValueError(f"{self.plural}: subresource {subresource!r} needs a name")
            return f"{root}/{self.plural}"
        path = f"{root}/{self.plural}/{name}"
        return f"{path}/{subresource}" if subresource else path


def error_from_status(code: int, body: Any, what: str = "") -> ApiError:
    """The cnai error for a Kubernetes ``Status`` (or any error body) with HTTP ``code``.

    Kubernetes' Status is the shape cnai's own API answers with, so the client's mapping
    applies; on top of it, throttling, timeouts and internal errors are all "try again
    later" to cnai, prefixed by ``what`` (``GET /api/v1/...``) since Kubernetes words them
    without saying which request failed, and a client error cnai has no class for is a
    BadRequest.
    """
    if not isinstance(body, dict):
        body = {"message": body if isinstance(body, str) and body else f"HTTP {code}"}
    err = ApiError.from_status(code, body)
    if code == 429 or code >= 500:
        message = f"Kubernetes API {what}: {err.message} (HTTP {code})" if what else err.message
        err = ServiceUnavailable(message, causes=err.causes, kind=err.kind, name=err.name)
    elif type(err) is ApiError:
        err = BadRequest(err.message, causes=err.causes, kind=err.kind, name=err.name)
    err.status_code = code
    return err


def _decode(content: bytes) -> Any:
    try:
        return from_json(content) if content else None
    except ValueError:
        return content.decode(errors="replace")[:500]


class KubeApi:
    """One connection pool to one Kubernetes API server.

    ``authorization`` is called before every request for the ``Authorization`` header, so
    credentials that expire (in-cluster projected tokens, exec plugins) are refreshed by
    whatever produces them; a fixed header goes in ``headers``.
    """

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str] | None = None,
        verify: ssl.SSLContext | bool = True,
        cert: tuple[str, str] | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        authorization: Callable[[], str | None] | None = None,
        proxy: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if cert is not None:
            # httpx 0.28 deprecates ``cert=``: a client certificate belongs to the context.
            if not isinstance(verify, ssl.SSLContext):
                ctx = ssl.create_default_context()
                if verify is False:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                verify = ctx
            verify.load_cert_chain(cert[0], cert[1])
        self.base_url = base_url.rstrip("/")
        self._authorization = authorization
        self._watches: set[httpx.Response] = set()  # open watch responses, for end_watches()
        self._watches_ended = False
        self._client = httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Accept": "application/json", **(headers or {})},
            verify=verify,
            transport=transport,
            proxy=proxy,
            timeout=timeout,
            # Every open watch holds a connection for minutes (HTTP/1.1): no pool cap, or
            # the 101st watch would starve every ordinary request.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
        )

    @classmethod
    def load(cls, kubeconfig: str | None = None, context: str | None = None) -> KubeApi:
        """Connect as this pod's service account, or as a kubeconfig context says.

        In a pod (``KUBERNETES_SERVICE_HOST`` set) and without an explicit ``kubeconfig``,
        the in-cluster credentials are used; otherwise ``kubeconfig`` (a path, or several
        joined by ``:``), else ``$KUBECONFIG``, else ``~/.kube/config``, with ``context``
        or the file's current context. Not supported: ``tls-server-name`` (SNI override).
        """
        from kubernetes import client, config

        cfg = client.Configuration()
        # The official client's loaders carry no annotations.
        load_incluster: Any = config.load_incluster_config
        load_kube: Any = config.load_kube_config
        try:
            if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
                load_incluster(client_configuration=cfg)
                source = "in-cluster service account"
            else:
                path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
                load_kube(
                    config_file=path,
                    context=context,
                    client_configuration=cfg,
                    persist_config=False,
                )
                source = f"kubeconfig {path}" + (f" context {context!r}" if context else "")
        except (config.ConfigException, OSError) as exc:
            raise KubeConfigError(f"cannot load Kubernetes credentials: {exc}") from exc
        log.info("Kubernetes API at %s (%s)", cfg.host, source)
        return cls.from_configuration(cfg)

    @classmethod
    def from_configuration(cls, cfg: Any) -> KubeApi:
        """Build from an official-client ``Configuration`` (host, TLS, credentials)."""
        verify: ssl.SSLContext | bool
        if cfg.verify_ssl is False:
            verify = False
        else:
            verify = ssl.create_default_context(
                cafile=cfg.ssl_ca_cert or None, cadata=getattr(cfg, "ca_cert_data", None)
            )
            if getattr(cfg, "assert_hostname", None) is False:
                verify.check_hostname = False
        cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file and cfg.key_file else None

        def authorization() -> str | None:
            # Runs the loader's refresh hook: cheap until the credential expires; then an
            # in-cluster token is re-read from disk or an exec plugin runs again (the one
            # moment this blocks the event loop, for as long as the plugin takes).
            value = cfg.get_api_key_with_prefix("BearerToken", alias="authorization")
            return str(value) if value else None

        return cls(
            cfg.host,
            verify=verify,
            cert=cert,
            authorization=authorization,
            proxy=getattr(cfg, "proxy", None) or None,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection; open streams fail on their next read."""
        await self._client.aclose()

    async def end_watches(self) -> None:
        """End every open watch now (its reader fails with Unreachable at once) and leave
        every other request be: what a server that is shutting down does first, so that
        its clients' watches need not run into its shutdown timeout. A watch whose
        response arrives later ends as soon as it does."""
        self._watches_ended = True
        for resp in list(self._watches):
            await resp.aclose()

    # -- requests -----------------------------------------------------------------------

    def _headers(self, content_type: str | None = None) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self._authorization is not None and (value := self._authorization()):
            headers["Authorization"] = value
        if content_type is not None:
            headers["Content-Type"] = content_type
        return headers

    def _unreachable(self, method: str, path: str, exc: Exception) -> Unreachable:
        detail = str(exc) or type(exc).__name__
        return Unreachable(f"Kubernetes API server at {self.base_url}: {method} {path}: {detail}")

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        json: Any = None,
        content_type: str | None = None,
    ) -> Obj:
        """Send one request and return the JSON body; raise the cnai error for a failure."""
        content = to_json(json) if json is not None else None
        if content is not None and content_type is None:
            content_type = "application/json"
        try:
            resp = await self._client.request(
                method,
                path,
                params=dict(params) if params else None,
                content=content,
                headers=self._headers(content_type),
            )
        except httpx.HTTPError as exc:
            raise self._unreachable(method, path, exc) from exc
        body = _decode(resp.content)
        if resp.status_code >= 400:
            raise error_from_status(resp.status_code, body, f"{method} {path}")
        if not isinstance(body, dict):
            raise ServiceUnavailable(
                f"Kubernetes API {method} {path}: expected a JSON object, got {body!r:.200}"
            )
        return body

    async def stream_lines(
        self, path: str, params: Params | None = None, *, read_timeout: float | None = None
    ) -> AsyncGenerator[Obj, None]:
        """A watch: one JSON object per line until the server ends the response.

        No read timeout by default: a quiet watch is healthy. Callers that pass
        ``timeoutSeconds`` to the server may set ``read_timeout`` a little longer, so a
        silently dead connection is noticed too.
        """
        async with aclosing(self._stream(path, params, read_timeout, lines=True)) as lines:
            async for line in lines:
                assert isinstance(line, str)
                if not line.strip():
                    continue
                try:
                    item = from_json(line)
                except ValueError:
                    raise ServiceUnavailable(
                        f"Kubernetes API GET {path}: a watch line is not JSON: {line[:200]!r}"
                    ) from None
                if not isinstance(item, dict):
                    raise ServiceUnavailable(f"Kubernetes API GET {path}: {line[:200]!r}")
                yield item

    async def stream_bytes(
        self, path: str, params: Params | None = None, *, read_timeout: float | None = None
    ) -> AsyncGenerator[bytes, None]:
        """A raw streamed body (pod logs with ``follow=true``), chunk by chunk."""
        async with aclosing(self._stream(path, params, read_timeout, lines=False)) as chunks:
            async for chunk in chunks:
                assert isinstance(chunk, bytes)
                yield chunk

    async def _stream(
        self, path: str, params: Params | None, read_timeout: float | None, *, lines: bool
    ) -> AsyncGenerator[str | bytes, None]:
        timeout = httpx.Timeout(DEFAULT_TIMEOUT, read=read_timeout)
        try:
            async with self._client.stream(
                "GET",
                path,
                params=dict(params) if params else None,
                headers=self._headers(),
                timeout=timeout,
            ) as resp:
                if resp.status_code >= 400:
                    body = _decode(await resp.aread())
                    raise error_from_status(resp.status_code, body, f"GET {path}")
                chunks = resp.aiter_lines() if lines else resp.aiter_bytes()
                if lines:  # a watch (stream_lines); log streams are not ended early
                    self._watches.add(resp)
                    if self._watches_ended:  # ended while this one was being answered
                        await resp.aclose()
                try:
                    async for chunk in chunks:
                        yield chunk
                finally:
                    self._watches.discard(resp)
        except (httpx.HTTPError, httpx.StreamClosed) as exc:  # closed: end_watches()
            raise self._unreachable("GET", path, exc) from exc

    # -- typed conveniences ---------------------------------------------------------------

    async def get(
        self,
        resource: ApiResource,
        namespace: str | None,
        name: str,
        subresource: str | None = None,
    ) -> Obj:
        return await self.request("GET", resource.path(namespace, name, subresource))

    async def list(
        self, resource: ApiResource, namespace: str | None = None, params: Params | None = None
    ) -> Obj:
        """The list object (``items`` and ``metadata.resourceVersion``)."""
        return await self.request("GET", resource.path(namespace), params=params)

    async def create(self, resource: ApiResource, obj: Obj) -> Obj:
        """POST ``obj`` to its collection (the namespace comes from its metadata)."""
        namespace = (obj.get("metadata") or {}).get("namespace")
        if resource.namespaced and not namespace:
            name = (obj.get("metadata") or {}).get("name")
            raise BadRequest(
                f"metadata.namespace: required for {resource.kind} {name!r}", name=name
            )
        return await self.request("POST", resource.path(namespace), json=obj)

    async def replace(self, resource: ApiResource, obj: Obj, subresource: str | None = None) -> Obj:
        """PUT ``obj`` (or its ``subresource``); its resourceVersion makes it conditional."""
        meta = obj.get("metadata") or {}
        path = resource.path(meta.get("namespace"), meta.get("name"), subresource)
        return await self.request("PUT", path, json=obj)

    async def patch(
        self,
        resource: ApiResource,
        namespace: str | None,
        name: str,
        patch: Obj,
        *,
        content_type: str = MERGE_PATCH,
        subresource: str | None = None,
    ) -> Obj:
        path = resource.path(namespace, name, subresource)
        return await self.request("PATCH", path, json=patch, content_type=content_type)

    async def delete(
        self,
        resource: ApiResource,
        namespace: str | None,
        name: str,
        options: Obj | None = None,
    ) -> Obj:
        """DELETE with a ``DeleteOptions`` body; returns the object or a ``Status``."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", **(options or {})}
        return await self.request("DELETE", resource.path(namespace, name), json=body)

    def watch(
        self,
        resource: ApiResource,
        namespace: str | None = None,
        params: Params | None = None,
        *,
        read_timeout: float | None = None,
    ) -> AsyncGenerator[Obj, None]:
        """Raw watch events (``{"type": ..., "object": ...}``) of a collection."""
        query = {"watch": "true", **(params or {})}
        return self.stream_lines(resource.path(namespace), query, read_timeout=read_timeout)
