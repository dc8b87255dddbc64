"""KubeApi: paths, Status-to-error mapping, streams, and credentials from kubeconfig."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubeapi import KubeApiServer
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cnai.core.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    Gone,
    Invalid,
    NotFound,
    ServiceUnavailable,
    Unauthorized,
    Unreachable,
)
from cnai.runtimes.kubernetes.api import ApiResource, KubeApi, KubeConfigError

pytestmark = pytest.mark.anyio

SECRETS = ApiResource("", "v1", "secrets", "Secret", namespaced=True)
NAMESPACES = ApiResource("", "v1", "namespaces", "Namespace", namespaced=False, has_status=True)
JOBS = ApiResource("cnai.io", "v1alpha1", "jobs", "Job", namespaced=True, has_status=True)


# -- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "args", "path"),
    [
        pytest.param(SECRETS, (None,), "/api/v1/secrets", id="core-all-namespaces"),
        pytest.param(SECRETS, ("a",), "/api/v1/namespaces/a/secrets", id="core-collection"),
        pytest.param(SECRETS, ("a", "s"), "/api/v1/namespaces/a/secrets/s", id="core-object"),
        pytest.param(NAMESPACES, (None, "a"), "/api/v1/namespaces/a", id="cluster-scoped"),
        pytest.param(NAMESPACES, ("x", "a"), "/api/v1/namespaces/a", id="cluster-ignores-ns"),
        pytest.param(
            JOBS,
            ("a", "j", "status"),
            "/apis/cnai.io/v1alpha1/namespaces/a/jobs/j/status",
            id="group-status-subresource",
        ),
        pytest.param(JOBS, (None,), "/apis/cnai.io/v1alpha1/jobs", id="group-all-namespaces"),
    ],
)
def test_paths(resource: ApiResource, args: tuple[Any, ...], path: str) -> None:
    assert resource.path(*args) == path


def test_api_version() -> None:
    assert (SECRETS.api_version, JOBS.api_version) == ("v1", "cnai.io/v1alpha1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param((None, "s"), "needs a namespace", id="namespaced-object-without-ns"),
        pytest.param(("a", None, "status"), "needs a name", id="subresource-without-name"),
    ],
)
def test_impossible_paths_are_refused(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SECRETS.path(*args)


# -- errors ----------------------------------------------------------------------------------


def status(code: int, reason: str, message: str = "boom", **details: Any) -> dict[str, Any]:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
    return {**body, "message": message, "reason": reason, "code": code, "details": details}


def mock_api(handler: Callable[[httpx.Request], httpx.Response], **kw: Any) -> KubeApi:
    return KubeApi("https://k8s.test:6443", transport=httpx.MockTransport(handler), **kw)


def answering(code: int, body: Any) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes):
            return httpx.Response(code, content=body)
        return httpx.Response(code, json=body)

    return handler


@pytest.mark.parametrize(
    ("code", "body", "error"),
    [
        pytest.param(404, status(404, "NotFound"), NotFound, id="404-not-found"),
        pytest.param(409, status(409, "AlreadyExists"), AlreadyExists, id="409-already-exists"),
        pytest.param(409, status(409, "Conflict"), Conflict, id="409-conflict"),
        pytest.param(410, status(410, "Expired"), Gone, id="410-expired"),
        pytest.param(410, status(410, "Gone"), Gone, id="410-gone"),
        pytest.param(403, status(403, "Forbidden"), Forbidden, id="403-forbidden"),
        pytest.param(401, status(401, "Unauthorized"), Unauthorized, id="401-unauthorized"),
        pytest.param(400, status(400, "BadRequest"), BadRequest, id="400-bad-request"),
        pytest.param(406, status(406, "NotAcceptable"), BadRequest, id="other-4xx-bad-request"),
        pytest.param(500, status(500, "InternalError"), ServiceUnavailable, id="500-unavailable"),
        pytest.param(504, status(504, "Timeout"), ServiceUnavailable, id="504-unavailable"),
        pytest.param(429, status(429, "TooManyRequests"), ServiceUnavailable, id="429-throttled"),
        pytest.param(502, b"<html>bad gateway</html>", ServiceUnavailable, id="502-not-json"),
    ],
)
async def test_status_bodies_become_cnai_errors(
    code: int, body: Any, error: type[ApiError]
) -> None:
    api = mock_api(answering(code, body))
    with pytest.raises(ApiError) as info:
        await api.request("GET", "/api/v1/namespaces/a/secrets/s")
    assert type(info.value) is error
    assert info.value.status_code == code
    await api.close()


async def test_server_errors_say_which_request_failed() -> None:
    api = mock_api(answering(500, b"<html>oops</html>"))
    with pytest.raises(ServiceUnavailable, match=r"GET /api/v1/secrets: <html>oops</html>"):
        await api.request("GET", "/api/v1/secrets")
    await api.close()


async def test_invalid_carries_the_field_causes() -> None:
    cause = {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.image"}
    body = status(422, "Invalid", 'Job "j" is invalid', name="j", kind="Job", causes=[cause])
    api = mock_api(answering(422, body))
    with pytest.raises(Invalid) as info:
        await api.create(JOBS, {"metadata": {"name": "j", "namespace": "a"}})
    assert info.value.causes == [FieldError("spec.image", "Required value", "FieldValueRequired")]
    assert (info.value.name, info.value.kind) == ("j", "Job")
    await api.close()


async def test_an_unreachable_server_is_unreachable_naming_it() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    api = mock_api(refuse)
    with pytest.raises(Unreachable, match=r"https://k8s.test:6443: GET /api/v1/secrets: .*refused"):
        await api.request("GET", "/api/v1/secrets")
    with pytest.raises(Unreachable):
        async for _ in api.stream_lines("/api/v1/secrets", {"watch": "true"}):
            pass
    await api.close()


async def test_a_create_of_a_namespaced_object_needs_its_namespace() -> None:
    api = mock_api(answering(201, {}))
    with pytest.raises(BadRequest, match=r"metadata\.namespace: required for Secret 's'"):
        await api.create(SECRETS, {"metadata": {"name": "s"}})
    await api.close()


# -- what goes on the wire -------------------------------------------------------------------


class Recorder:
    """A mock apiserver that answers ``{}`` and keeps the requests."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"kind": "Secret", "metadata": {}})


async def test_authorization_is_asked_for_on_every_request() -> None:
    tokens = iter(["Bearer one", "Bearer two"])
    rec = Recorder()
    api = mock_api(rec, authorization=lambda: next(tokens))
    await api.get(SECRETS, "a", "s")
    await api.get(SECRETS, "a", "s")
    assert [r.headers["authorization"] for r in rec.requests] == ["Bearer one", "Bearer two"]
    await api.close()


async def test_writes_send_json_and_patches_their_media_type() -> None:
    rec = Recorder()
    api = mock_api(rec, headers={"User-Agent": "cnai-test"})
    obj = {"metadata": {"name": "s", "namespace": "a", "resourceVersion": "7"}, "data": {}}
    await api.replace(SECRETS, obj)
    await api.patch(JOBS, "a", "j", {"status": {"phase": "Running"}}, subresource="status")
    await api.delete(SECRETS, "a", "s", {"propagationPolicy": "Foreground"})
    put, patch, delete = rec.requests
    assert (put.method, put.url.path) == ("PUT", "/api/v1/namespaces/a/secrets/s")
    assert put.headers["content-type"] == "application/json"
    assert json.loads(put.content) == obj
    assert put.headers["user-agent"] == "cnai-test"
    assert patch.url.path == "/apis/cnai.io/v1alpha1/namespaces/a/jobs/j/status"
    assert patch.headers["content-type"] == "application/merge-patch+json"
    assert json.loads(delete.content) == {
        "kind": "DeleteOptions",
        "apiVersion": "v1",
        "propagationPolicy": "Foreground",
    }
    await api.close()


# -- streams ---------------------------------------------------------------------------------


async def test_stream_lines_yields_one_object_per_line() -> None:
    lines = b'{"type":"ADDED","object":{"a":1}}\n\n{"type":"DELETED","object":{"a":1}}\n'
    api = mock_api(answering(200, lines))
    got = [ev async for ev in api.stream_lines("/api/v1/secrets", {"watch": "true"})]
    assert [e["type"] for e in got] == ["ADDED", "DELETED"]
    await api.close()


async def test_stream_lines_refuses_a_line_that_is_not_json() -> None:
    api = mock_api(answering(200, b'{"type":"ADDED","object":{}}\nnot json\n'))
    with pytest.raises(ServiceUnavailable, match="a watch line is not JSON: 'not json'"):
        async for _ in api.stream_lines("/api/v1/secrets"):
            pass
    await api.close()


async def test_a_stream_that_fails_at_the_start_raises_the_status() -> None:
    api = mock_api(answering(410, status(410, "Expired", "too old resource version: 1 (5)")))
    with pytest.raises(Gone, match="too old resource version"):
        async for _ in api.stream_lines("/api/v1/secrets", {"watch": "true"}):
            pass
    await api.close()


async def test_stream_bytes_passes_the_body_through() -> None:
    api = mock_api(answering(200, b"line 1\nline 2\n"))
    body = b"".join([c async for c in api.stream_bytes("/api/v1/namespaces/a/pods/p/log")])
    assert body == b"line 1\nline 2\n"
    await api.close()


# -- credentials -----------------------------------------------------------------------------


async def whoami(request: Request) -> JSONResponse:
    return JSONResponse({"authorization": request.headers.get("authorization")})


@pytest.fixture
def server() -> Iterator[KubeApiServer]:
    srv = KubeApiServer([SECRETS], extra_routes=[Route("/whoami", whoami)]).start()
    yield srv
    srv.stop()


def write_kubeconfig(path: Path, server: str) -> Path:
    users = [{"name": u, "user": {"token": f"{u}-token"}} for u in ("alice", "bob")]
    contexts = [
        {"name": u, "context": {"cluster": "test", "user": u, "namespace": "default"}}
        for u in ("alice", "bob")
    ]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": {"server": server}}],
        "users": users,
        "contexts": contexts,
        "current-context": "alice",
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


@pytest.mark.parametrize(
    ("context", "token"),
    [pytest.param(None, "Bearer alice-token", id="current-context"), ("bob", "Bearer bob-token")],
)
async def test_load_from_a_kubeconfig(
    server: KubeApiServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    context: str | None,
    token: str,
) -> None:
    # An explicit kubeconfig wins even inside a pod.
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    kubeconfig = write_kubeconfig(tmp_path / "config", server.url)
    api = KubeApi.load(str(kubeconfig), context)
    assert (await api.request("GET", "/whoami"))["authorization"] == token
    with pytest.raises(NotFound):
        await api.get(SECRETS, "default", "missing")
    await api.close()


async def test_load_reads_kubeconfig_from_the_environment(
    server: KubeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "config", server.url)))
    api = KubeApi.load(context="bob")
    assert (await api.request("GET", "/whoami"))["authorization"] == "Bearer bob-token"
    await api.close()


def test_load_in_a_pod_uses_the_service_account(monkeypatch: pytest.MonkeyPatch) -> None:
    # No service-account token here: the in-cluster loader is the one that complains.
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(KubeConfigError, match="cannot load Kubernetes credentials"):
        KubeApi.load()


def test_load_names_an_unknown_context(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kubeconfig = write_kubeconfig(tmp_path / "config", "http://127.0.0.1:1")
    with pytest.raises(KubeConfigError, match="nope"):
        KubeApi.load(str(kubeconfig), "nope")


async def test_refreshing_credentials_are_read_per_request(server: KubeApiServer) -> None:
    from kubernetes import client

    cfg = client.Configuration(host=server.url)
    cfg.api_key["BearerToken"] = "Bearer old"
    refreshed = iter(["Bearer first", "Bearer second"])

    def refresh(c: Any) -> None:  # as the in-cluster loader's hook re-reads the token file
        c.api_key["BearerToken"] = next(refreshed)

    cfg.refresh_api_key_hook = refresh  # type: ignore[assignment]  # typed as None upstream
    api = KubeApi.from_configuration(cfg)
    seen = [(await api.request("GET", "/whoami"))["authorization"] for _ in range(2)]
    assert seen == ["Bearer first", "Bearer second"]
    await api.close()


async def test_merge_patch_against_the_test_server(server: KubeApiServer) -> None:
    api = KubeApi(server.url)
    obj = {"metadata": {"name": "s", "namespace": "a", "labels": {"x": "1", "y": "2"}}}
    created = await api.create(SECRETS, obj)
    patched = await api.patch(SECRETS, "a", "s", {"metadata": {"labels": {"x": None, "z": "3"}}})
    assert patched["metadata"]["labels"] == {"y": "2", "z": "3"}
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}}
    with pytest.raises(Conflict, match="has been modified"):
        await api.patch(SECRETS, "a", "s", stale)
    with pytest.raises(ApiError) as info:
        await api.patch(SECRETS, "a", "s", {}, content_type="application/json-patch+json")
    assert info.value.status_code == 415
    await api.close()
