"""Authentication and namespace authorization over real HTTP.

A namespace token may do everything inside its namespace and read that Namespace
object; everything else is 403 (and an unknown, garbled or revoked token is 401).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from harness import RunningPlatform, unique

from cnai import Client
from cnai.core.errors import Forbidden, Unauthorized
from cnai.core.kinds import Event, Namespace, ObjectReference, Secret

API = "/apis/cnai.io/v1alpha1"


@dataclass(frozen=True)
class Tenants:
    """Two namespaces, each with a secret, and a token limited to the first."""

    mine: str
    theirs: str
    token: str
    token_id: str


@pytest.fixture(scope="module")
def tenants(platform: RunningPlatform) -> Tenants:
    mine, theirs = unique("team-x"), unique("team-y")
    with platform.client() as admin:
        for ns in (mine, theirs):
            admin.create(Namespace.new(ns))
            admin.create(Secret.new("db", ns, string_data={"password": f"pw-of-{ns}"}))
        issued = admin.create_token(mine, "authz tests")
    return Tenants(mine, theirs, issued["token"], issued["id"])


@pytest.fixture
def tenant(platform: RunningPlatform, tenants: Tenants) -> Iterator[Client]:
    with Client(server=platform.url, token=tenants.token, namespace=tenants.mine) as c:
        yield c


@pytest.fixture
def raw(platform: RunningPlatform, tenants: Tenants) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {tenants.token}"}
    with httpx.Client(base_url=platform.url, headers=headers, timeout=30) as c:
        yield c


def test_admin_issues_a_namespace_token(client: Client, tenants: Tenants) -> None:
    listed = {t["id"]: t for t in client.list_tokens()}
    assert listed[tenants.token_id]["namespace"] == tenants.mine
    assert "token" not in listed[tenants.token_id]  # the secret is shown once, at issue


def test_namespace_token_can_do_everything_in_its_namespace(
    tenant: Client, tenants: Tenants
) -> None:
    ns = tenants.mine
    assert tenant.whoami()["namespace"] == ns
    name = unique("own")
    created = tenant.create(Secret.new(name, ns, string_data={"k": "v"}))
    assert tenant.get(Secret, name, ns).metadata.uid == created.metadata.uid
    assert name in {s.metadata.name for s in tenant.list(Secret, ns).items}
    created.metadata.labels["tier"] = "gold"
    updated = tenant.update(created)
    assert updated.metadata.labels == {"tier": "gold"}
    patched = tenant.patch(Secret, name, {"metadata": {"labels": {"tier": "silver"}}}, ns)
    assert patched.metadata.labels == {"tier": "silver"}
    events = tenant.watch(Secret, ns, field_selector=f"metadata.name={name}", timeout_seconds=10)
    first = next(events)
    events.close()
    assert (first.type, first.object.metadata.name) == ("ADDED", name)
    ev = Event.new(unique("ev"), ns, involved_object=ObjectReference(kind="Secret", name=name))
    assert tenant.create(ev).metadata.namespace == ns
    tenant.delete(Secret, name, ns)
    assert name not in {s.metadata.name for s in tenant.list(Secret, ns).items}


def test_namespace_token_reads_its_own_namespace_object(tenant: Client, tenants: Tenants) -> None:
    assert tenant.get(Namespace, tenants.mine).metadata.name == tenants.mine


def _forbidden(raw: httpx.Client, method: str, path: str, body: object = None) -> None:
    resp = raw.request(method, path, json=body)
    assert resp.status_code == 403, (method, path, resp.text)
    assert resp.json()["reason"] == "Forbidden"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/namespaces/{theirs}/secrets/db", id="get-their-secret"),
        pytest.param("GET", "/namespaces/{theirs}/secrets", id="list-their-secrets"),
        pytest.param("GET", "/namespaces/{theirs}/secrets?watch=true", id="watch-their-secrets"),
        pytest.param("DELETE", "/namespaces/{theirs}/secrets/db", id="delete-their-secret"),
        pytest.param("PUT", "/namespaces/{theirs}/secrets/db", id="update-their-secret"),
        pytest.param("PATCH", "/namespaces/{theirs}/secrets/db", id="patch-their-secret"),
        pytest.param("POST", "/namespaces/{theirs}/secrets", id="create-in-their-namespace"),
        pytest.param("GET", "/namespaces/{theirs}/events", id="list-their-events"),
        pytest.param("GET", "/secrets", id="list-secrets-in-all-namespaces"),
        pytest.param("GET", "/secrets?watch=true", id="watch-secrets-in-all-namespaces"),
        pytest.param("GET", "/events", id="list-events-in-all-namespaces"),
        pytest.param("GET", "/namespaces", id="list-namespaces"),
        pytest.param("GET", "/namespaces?watch=true", id="watch-namespaces"),
        pytest.param("GET", "/namespaces/{theirs}", id="get-their-namespace"),
        pytest.param("POST", "/namespaces", id="create-a-namespace"),
        pytest.param("DELETE", "/namespaces/{mine}", id="delete-own-namespace"),
        pytest.param("PUT", "/namespaces/{mine}", id="update-own-namespace"),
        pytest.param("PUT", "/namespaces/{mine}/status", id="update-own-namespace-status"),
        pytest.param("DELETE", "/namespaces/{theirs}", id="delete-their-namespace"),
    ],
)
def test_namespace_token_is_forbidden_outside_its_namespace(
    raw: httpx.Client, tenants: Tenants, method: str, path: str
) -> None:
    body = None
    if method in ("PUT", "PATCH", "POST"):
        body = Secret.new("db", tenants.theirs, string_data={"password": "stolen"}).to_dict()
    _forbidden(raw, method, API + path.format(mine=tenants.mine, theirs=tenants.theirs), body)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/auth/v1/tokens", id="list-tokens"),
        pytest.param("POST", "/auth/v1/tokens", id="create-token"),
        pytest.param("DELETE", "/auth/v1/tokens/{token_id}", id="revoke-own-token"),
    ],
)
def test_namespace_token_cannot_manage_tokens(
    raw: httpx.Client, tenants: Tenants, method: str, path: str
) -> None:
    body = {"namespace": tenants.mine} if method == "POST" else None
    _forbidden(raw, method, path.format(token_id=tenants.token_id), body)


def test_sdk_raises_forbidden_for_another_namespace(tenant: Client, tenants: Tenants) -> None:
    with pytest.raises(Forbidden):
        tenant.get(Secret, "db", tenants.theirs)
    with pytest.raises(Forbidden):
        list(tenant.watch(Secret, tenants.theirs, timeout_seconds=5))
    with pytest.raises(Forbidden):
        tenant.create_token(tenants.mine)


def test_namespace_token_cannot_see_other_secrets_any_way(
    raw: httpx.Client, tenants: Tenants, client: Client
) -> None:
    """Selectors, path tricks and mismatched bodies reveal nothing of the other tenant."""
    theirs, mine = tenants.theirs, tenants.mine
    leaked = f"pw-of-{theirs}"
    probes = [
        ("GET", f"/namespaces/{mine}/secrets?fieldSelector=metadata.namespace={theirs}"),
        ("GET", f"/namespaces/{mine}/secrets?watch=true&timeoutSeconds=0.2"),
        ("GET", f"/namespaces/{mine}/secrets/db/../../{theirs}/secrets/db"),
        ("GET", f"/namespaces/{mine}/secrets/db%2F..%2F..%2F{theirs}%2Fsecrets%2Fdb"),
        ("GET", f"/namespaces/{mine}/events"),
        ("GET", f"/namespaces/{mine}"),
    ]
    for method, path in probes:
        resp = raw.request(method, API + path)
        assert leaked not in resp.text, path
        assert theirs not in resp.text or resp.status_code >= 400, path
    # A body naming the other namespace is refused, not redirected there.
    body = Secret.new("db", theirs, string_data={"password": "overwrite"}).to_dict()
    resp = raw.put(f"{API}/namespaces/{mine}/secrets/db", json=body)
    assert resp.status_code == 422
    assert resp.json()["details"]["causes"][0]["field"] == "metadata.namespace"
    resp = raw.post(f"{API}/namespaces/{mine}/secrets", json=body)
    assert resp.status_code == 422
    # Their secret is untouched.
    assert client.get(Secret, "db", theirs).decoded() == {"password": leaked}


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("", id="empty-header"),
        pytest.param("Bearer", id="scheme-only"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic-auth"),
        pytest.param("Bearer not-a-cnai-token", id="garbled"),
        pytest.param("Bearer cnai_deadbeef0000_" + "x" * 43, id="unknown-id"),
        pytest.param("Bearer cnai__secret", id="empty-id"),
        pytest.param("Bearer cnai_abc", id="missing-secret"),
    ],
)
def test_bad_tokens_get_401(platform: RunningPlatform, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    resp = httpx.get(f"{platform.url}{API}/namespaces/default/secrets", headers=headers)
    assert resp.status_code == 401
    assert resp.json()["reason"] == "Unauthorized"


def test_a_right_id_with_a_wrong_secret_gets_401(
    platform: RunningPlatform, tenants: Tenants
) -> None:
    prefix, _, _secret = tenants.token.rpartition("_")
    forged = f"{prefix}_{'A' * len(_secret)}"
    with Client(server=platform.url, token=forged) as forger, pytest.raises(Unauthorized):
        forger.whoami()


def test_a_revoked_token_gets_401(client: Client, platform: RunningPlatform) -> None:
    ns = unique("revoked")
    client.create(Namespace.new(ns))
    issued = client.create_token(ns)
    with Client(server=platform.url, token=issued["token"], namespace=ns) as tenant:
        assert tenant.list(Secret, ns).items == []
        client.revoke_token(issued["id"])
        with pytest.raises(Unauthorized):
            tenant.list(Secret, ns)
    assert issued["id"] not in {t["id"] for t in client.list_tokens()}


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_need_no_token(platform: RunningPlatform, path: str) -> None:
    resp = httpx.get(platform.url + path)
    assert (resp.status_code, resp.text) == (200, "ok")


@pytest.mark.parametrize(
    "path",
    [
        "/openapi.json",
        "/version",
        "/apis",
        API,
        "/auth/v1/whoami",
        "/auth/v1/tokens",
        API + "/namespaces",
        API + "/namespaces/default",
        API + "/namespaces/default/secrets",
        API + "/namespaces/default/secrets?watch=true",
        API + "/secrets",
    ],
)
def test_everything_else_needs_a_token(platform: RunningPlatform, path: str) -> None:
    resp = httpx.get(platform.url + path)
    assert resp.status_code == 401, path
    assert resp.json()["reason"] == "Unauthorized"


def test_writes_without_a_token_are_refused_before_reading_the_body(
    platform: RunningPlatform,
) -> None:
    resp = httpx.post(f"{platform.url}{API}/namespaces/default/secrets", content=b"not json")
    assert resp.status_code == 401
