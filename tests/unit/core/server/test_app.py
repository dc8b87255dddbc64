"""The API server's routes through the real ASGI app: auth, CRUD, authz, tokens and watch."""

from __future__ import annotations

import json

import anyio
import anyio.lowlevel
import pytest

from cnai.core.server.app import PREFIX

from ..builders import b64, make_secret
from .api_harness import Api

pytestmark = pytest.mark.anyio

SECRETS = "/namespaces/default/secrets"


async def test_health_needs_no_token_and_readiness_follows_the_server(api: Api) -> None:
    assert (await api.client.get("/healthz")).text == "ok"
    assert (await api.client.get("/readyz")).status_code == 503
    api.server.ready = True
    assert (await api.client.get("/readyz")).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/version", id="version"),
        pytest.param("/apis", id="groups"),
        pytest.param(PREFIX, id="discovery"),
        pytest.param("/openapi.json", id="openapi"),
        pytest.param("/auth/v1/whoami", id="whoami"),
        pytest.param("/auth/v1/tokens", id="tokens"),
        pytest.param(PREFIX + "/namespaces", id="cluster-list"),
        pytest.param(PREFIX + SECRETS, id="namespaced-list"),
        pytest.param(PREFIX + SECRETS + "?watch=true", id="watch"),
        pytest.param(PREFIX + "/namespaces/default", id="item"),
    ],
)
async def test_every_api_endpoint_needs_a_token(api: Api, path: str) -> None:
    resp = await api.client.get(path)
    assert resp.status_code == 401
    assert resp.json()["reason"] == "Unauthorized"
    assert (await api.client.get(path.split("?")[0], headers=api.headers())).status_code == 200


async def test_whoami_and_version(api: Api) -> None:
    me = (await api.client.get("/auth/v1/whoami", headers=api.headers(api.team_a))).json()
    assert (me["namespace"], me["admin"]) == ("team-a", False)
    assert (await api.client.get("/version", headers=api.headers())).json()["api"] == (
        "cnai.io/v1alpha1"
    )


async def test_discovery_lists_the_kernel_kinds(api: Api) -> None:
    body = (await api.client.get(PREFIX, headers=api.headers())).json()
    assert {r["kind"] for r in body["resources"]} == {"Namespace", "Secret", "Event", "Pod", "Node"}


async def test_create_read_update_patch_delete(api: Api) -> None:
    created = await api.request("POST", SECRETS, json=make_secret("db").data(k="v").build())
    assert created.status_code == 201
    obj = created.json()
    assert (await api.request("GET", SECRETS + "/db")).json() == obj

    duplicate = await api.request("POST", SECRETS, json=make_secret("db").build())
    assert (duplicate.status_code, duplicate.json()["reason"]) == (409, "AlreadyExists")

    put = await api.request("PUT", SECRETS + "/db", json=dict(obj, data={"k": b64("w")}))
    assert put.status_code == 200
    assert put.json()["metadata"]["generation"] == 2
    stale = await api.request("PUT", SECRETS + "/db", json=dict(obj, data={"k": b64("x")}))
    assert (stale.status_code, stale.json()["reason"]) == (409, "Conflict")

    patched = await api.request(
        "PATCH",
        SECRETS + "/db",
        json={"metadata": {"labels": {"app": "web"}}, "data": {"k": None, "j": b64("y")}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.status_code == 200
    assert patched.json()["metadata"]["labels"] == {"app": "web"}
    assert patched.json()["data"] == {"j": b64("y")}

    deleted = await api.request("DELETE", SECRETS + "/db")
    assert deleted.status_code == 200
    missing = await api.request("GET", SECRETS + "/db")
    assert (missing.status_code, missing.json()["reason"]) == (404, "NotFound")


async def test_validation_errors_come_back_with_their_causes(api: Api) -> None:
    resp = await api.request("POST", SECRETS, json=make_secret("Bad_Name").build())
    assert resp.status_code == 422
    (cause,) = resp.json()["details"]["causes"]
    assert cause["field"] == "metadata.name"
    assert "DNS-1123" in cause["message"]


async def test_list_with_selectors(api: Api) -> None:
    await api.request("POST", SECRETS, json=make_secret("a").labels(app="web").build())
    await api.request("POST", SECRETS, json=make_secret("b").labels(app="db").build())
    listed = await api.request("GET", SECRETS, params={"labelSelector": "app=web"})
    body = listed.json()
    assert body["kind"] == "SecretList"
    assert [o["metadata"]["name"] for o in body["items"]] == ["a"]
    assert body["metadata"]["resourceVersion"] == api.store.current_resource_version()
    bad = await api.request("GET", SECRETS, params={"labelSelector": "app in web"})
    assert bad.status_code == 400
    assert "labelSelector" in bad.json()["message"]


async def test_status_subresource_changes_only_status(api: Api) -> None:
    ns = (await api.request("GET", "/namespaces/team-a")).json()
    body = dict(ns, status={"phase": "Terminating"})
    body["metadata"] = dict(ns["metadata"], labels={"ignored": "yes"})
    resp = await api.request("PUT", "/namespaces/team-a/status", json=body)
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == {"phase": "Terminating"}
    assert "labels" not in resp.json()["metadata"]  # empty metadata maps are omitted


async def test_objects_named_status_are_ordinary_objects(api: Api) -> None:
    created = await api.request("POST", SECRETS, json=make_secret("status").data(k="v").build())
    assert created.status_code == 201
    obj = created.json()
    resp = await api.request("PUT", SECRETS + "/status", json=dict(obj, data={"k": b64("w")}))
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == {"k": b64("w")}


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        pytest.param("GET", "/namespaces/team-a/secrets", 200, id="own-namespace-list"),
        pytest.param("POST", "/namespaces/team-a/secrets", 201, id="own-namespace-create"),
        pytest.param("GET", "/namespaces/team-a", 200, id="own-namespace-object"),
        pytest.param("GET", "/namespaces/team-b/secrets", 403, id="other-namespace-list"),
        pytest.param("POST", "/namespaces/team-b/secrets", 403, id="other-namespace-create"),
        pytest.param("GET", "/namespaces/team-b", 403, id="other-namespace-object"),
        pytest.param("GET", "/secrets", 403, id="all-namespaces-list"),
        pytest.param("GET", "/namespaces", 403, id="cluster-scoped-list"),
        pytest.param("DELETE", "/namespaces/team-a", 403, id="delete-own-namespace"),
    ],
)
async def test_namespace_token_is_confined_to_its_namespace(
    api: Api, method: str, path: str, code: int
) -> None:
    body = make_secret("s", None).build() if method == "POST" else None
    resp = await api.request(method, path, token=api.team_a, json=body)
    assert resp.status_code == code, resp.text
    if code == 403:
        assert resp.json()["reason"] == "Forbidden"


@pytest.mark.parametrize(
    ("method", "path", "code", "message"),
    [
        pytest.param("GET", "/namespaces/default/namespaces", 404, "cluster-scoped", id="ns-in-ns"),
        pytest.param("GET", "/secrets/db", 404, "namespaced", id="namespaced-item-without-ns"),
        pytest.param("POST", "/secrets", 404, "namespaced", id="create-without-namespace"),
        pytest.param("GET", "/gadgets", 404, "no resource type 'gadgets'", id="unknown-kind"),
        pytest.param("GET", "/a/b/c/d/e/f", 404, "no such endpoint", id="unknown-path"),
        pytest.param("POST", "/namespaces/default", 405, "not allowed", id="wrong-method"),
        pytest.param(
            "GET", "/namespaces/ghost/secrets/x", 404, "not found", id="missing-namespace-item"
        ),
    ],
)
async def test_bad_paths_get_status_errors(
    api: Api, method: str, path: str, code: int, message: str
) -> None:
    resp = await api.request(method, path, json=make_secret("db").build())
    assert resp.status_code == code
    status = resp.json()
    assert (status["kind"], status["code"]) == ("Status", code)
    assert message in status["message"]


async def test_tokens_are_managed_by_admins_only(api: Api) -> None:
    tokens = "/auth/v1/tokens"
    issued = await api.client.post(
        tokens, json={"namespace": "team-b", "description": "ci"}, headers=api.headers()
    )
    assert issued.status_code == 201
    token, token_id = issued.json()["token"], issued.json()["id"]
    me = await api.client.get("/auth/v1/whoami", headers=api.headers(token))
    assert me.json()["namespace"] == "team-b"

    listed = (await api.client.get(tokens, headers=api.headers())).json()["items"]
    assert token_id in [t["id"] for t in listed]
    assert all("digest" not in t and "token" not in t for t in listed)
    assert token not in json.dumps(listed)

    for path, method in ((tokens, "GET"), (tokens, "POST"), (f"{tokens}/{token_id}", "DELETE")):
        resp = await api.client.request(method, path, json={}, headers=api.headers(api.team_a))
        assert resp.status_code == 403

    revoked = await api.client.delete(f"{tokens}/{token_id}", headers=api.headers())
    assert revoked.status_code == 200
    assert (await api.client.get("/auth/v1/whoami", headers=api.headers(token))).status_code == 401


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param({"namespace": "ghost"}, 404, id="missing-namespace"),
        pytest.param({"namespace": 5}, 400, id="namespace-not-a-string"),
        pytest.param({"description": ["x"]}, 400, id="description-not-a-string"),
    ],
)
async def test_bad_token_requests(api: Api, body: dict[str, object], code: int) -> None:
    resp = await api.client.post("/auth/v1/tokens", json=body, headers=api.headers())
    assert resp.status_code == code


async def test_watch_streams_ndjson_events_until_the_store_closes(api: Api) -> None:
    await api.request("POST", SECRETS, json=make_secret("before").build())
    result: dict[str, str] = {}

    async def watch() -> None:
        resp = await api.request("GET", SECRETS, params={"watch": "true"})
        assert resp.headers["content-type"].startswith("application/x-ndjson")
        result["text"] = resp.text

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        while not api.store.broadcaster.subscribers:  # the watch has caught up
            await anyio.lowlevel.checkpoint()
        await api.request("POST", SECRETS, json=make_secret("live").build())
        await api.request("DELETE", SECRETS + "/before")
        await api.store.close()  # ends every open watch
    lines = [json.loads(line) for line in result["text"].splitlines()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [
        ("ADDED", "before"),
        ("ADDED", "live"),
        ("DELETED", "before"),
    ]


@pytest.mark.parametrize(
    ("params", "code", "reason"),
    [
        pytest.param({"resourceVersion": "abc"}, 410, "Expired", id="invalid-version-is-gone"),
        pytest.param({"timeoutSeconds": "soon"}, 400, "BadRequest", id="bad-timeout"),
        pytest.param({"timeoutSeconds": "-1"}, 400, "BadRequest", id="negative-timeout"),
        pytest.param({"labelSelector": "a in"}, 400, "BadRequest", id="bad-selector"),
    ],
)
async def test_watch_errors_before_streaming(
    api: Api, params: dict[str, str], code: int, reason: str
) -> None:
    resp = await api.request("GET", SECRETS, params={"watch": "true", **params})
    assert resp.status_code == code
    assert resp.json()["reason"] == reason
    assert api.store.broadcaster.subscribers == set()


async def test_watch_with_a_zero_timeout_ends_at_once(api: Api) -> None:
    await api.request("POST", SECRETS, json=make_secret("a").build())
    resp = await api.request("GET", SECRETS, params={"watch": "1", "timeoutSeconds": "0"})
    assert resp.status_code == 200
    assert resp.text == ""
    assert api.store.broadcaster.subscribers == set()
