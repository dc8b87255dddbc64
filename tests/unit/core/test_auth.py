"""Bearer tokens (issue, verify, revoke, stored only as digests) and namespace authorization."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from cnai.core.auth import (
    TOKENS,
    Principal,
    TokenAuthority,
    TokenRecord,
    authorize,
    split_token,
)
from cnai.core.errors import Forbidden, NotFound, Unauthorized
from cnai.core.store.sqlite import SQLiteStore

ADMIN = Principal("a1", None)
TEAM_A = Principal("t1", "team-a")


@pytest.mark.anyio
async def test_issued_token_verifies_as_its_principal(store: SQLiteStore) -> None:
    authority = TokenAuthority(store)
    admin, admin_record = await authority.issue(None, "admin")
    team, team_record = await authority.issue("team-a", "ci")
    assert authority.verify(f"Bearer {admin}") == Principal(admin_record.id, None)
    assert authority.verify(f"bearer {team}") == Principal(team_record.id, "team-a")
    assert authority.verify(f"Bearer {team}").is_admin is False
    assert authority.has_admin()


@pytest.mark.anyio
async def test_tokens_survive_a_reload_from_the_store(store: SQLiteStore) -> None:
    token, record = await TokenAuthority(store).issue("team-a", "ci")
    reloaded = TokenAuthority(store)
    with pytest.raises(Unauthorized):  # nothing is known before load()
        reloaded.verify(f"Bearer {token}")
    await reloaded.load()
    assert reloaded.verify(f"Bearer {token}").namespace == "team-a"
    assert [r.id for r in reloaded.records()] == [record.id]
    assert not reloaded.has_admin()


def _tamper(token: str) -> str:
    head, _, secret = token.rpartition("_")
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    return f"{head}_{flipped}"


Header = Callable[[str, TokenRecord], str | None]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        pytest.param(lambda t, r: None, "missing bearer token", id="missing-header"),
        pytest.param(lambda t, r: "", "missing bearer token", id="empty-header"),
        pytest.param(lambda t, r: f"Bearer {_tamper(t)}", "invalid", id="wrong-secret"),
        pytest.param(
            lambda t, r: t.replace(r.id, "000000000000"), "invalid", id="unknown-id-no-scheme"
        ),
        pytest.param(
            lambda t, r: "Bearer " + t.replace(r.id, "000000000000"), "invalid", id="unknown-id"
        ),
        pytest.param(lambda t, r: t, "invalid", id="token-without-bearer-scheme"),
        pytest.param(lambda t, r: f"Basic {t}", "invalid", id="basic-scheme"),
        pytest.param(lambda t, r: "Bearer", "invalid", id="scheme-only"),
        pytest.param(lambda t, r: "Bearer cnai_", "invalid", id="prefix-only"),
        pytest.param(lambda t, r: f"Bearer cnai_{r.id}", "invalid", id="id-without-secret"),
        pytest.param(lambda t, r: f"Bearer cnai_{r.id}_", "invalid", id="empty-secret"),
        pytest.param(
            lambda t, r: "Bearer " + t.removeprefix("cnai_"), "invalid", id="missing-cnai-prefix"
        ),
    ],
)
@pytest.mark.anyio
async def test_bad_credentials_are_unauthorized(
    store: SQLiteStore, header: Header, message: str
) -> None:
    authority = TokenAuthority(store)
    token, record = await authority.issue(None)
    authority.verify(f"Bearer {token}")  # the genuine token does verify
    with pytest.raises(Unauthorized, match=message) as info:
        authority.verify(header(token, record))
    assert info.value.code == 401


@pytest.mark.anyio
async def test_store_holds_only_the_sha256_digest(store: SQLiteStore, db_path: Path) -> None:
    token, record = await TokenAuthority(store).issue("team-a", "ci")
    token_id, secret = split_token(token) or ("", "")
    (stored,) = (await store.list(TOKENS)).items
    assert stored["metadata"]["name"] == token_id == record.id
    assert stored["digest"] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(stored)
    assert secret not in repr(record)
    await store.close()
    on_disk = b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))
    assert secret.encode() not in on_disk
    assert record.digest.encode() in on_disk  # the scan did read the records


@pytest.mark.anyio
async def test_tokens_are_distinct_and_carry_256_bit_secrets(store: SQLiteStore) -> None:
    authority = TokenAuthority(store)
    tokens = [(await authority.issue(None))[0] for _ in range(3)]
    assert len(set(tokens)) == 3
    for token in tokens:
        _, secret = split_token(token) or ("", "")
        assert len(secret) >= 43  # 32 random bytes, urlsafe base64


@pytest.mark.anyio
async def test_revoke_removes_the_token_everywhere(store: SQLiteStore) -> None:
    authority = TokenAuthority(store)
    token, record = await authority.issue("team-a")
    keep, _ = await authority.issue("team-b")
    await authority.revoke(record.id)
    with pytest.raises(Unauthorized):
        authority.verify(f"Bearer {token}")
    reloaded = TokenAuthority(store)
    await reloaded.load()
    with pytest.raises(Unauthorized):
        reloaded.verify(f"Bearer {token}")
    assert reloaded.verify(f"Bearer {keep}").namespace == "team-b"
    with pytest.raises(NotFound):
        await authority.revoke(record.id)


def test_public_record_has_no_digest() -> None:
    public = TokenRecord("id1", "d" * 64, "team-a", "ci", "2024").to_public()
    assert "digest" not in public
    assert "d" * 64 not in repr(public)


@pytest.mark.parametrize(
    ("principal", "namespace", "namespaced", "plural", "name", "verb", "allowed"),
    [
        pytest.param(ADMIN, None, False, "namespaces", None, "list", True, id="admin-cluster"),
        pytest.param(ADMIN, "team-b", True, "secrets", "s", "delete", True, id="admin-any-ns"),
        pytest.param(ADMIN, None, True, "secrets", None, "list", True, id="admin-all-ns-list"),
        pytest.param(TEAM_A, "team-a", True, "secrets", None, "list", True, id="own-ns-list"),
        pytest.param(TEAM_A, "team-a", True, "secrets", "s", "update", True, id="own-ns-write"),
        pytest.param(TEAM_A, "team-b", True, "secrets", "s", "get", False, id="other-ns-get"),
        pytest.param(
            TEAM_A, "team-b", True, "secrets", None, "create", False, id="other-ns-create"
        ),
        pytest.param(TEAM_A, None, True, "secrets", None, "list", False, id="all-ns-list"),
        pytest.param(TEAM_A, None, True, "secrets", None, "watch", False, id="all-ns-watch"),
        pytest.param(TEAM_A, None, False, "namespaces", None, "list", False, id="cluster-list"),
        pytest.param(
            TEAM_A, None, False, "namespaces", "team-a", "get", True, id="own-namespace-object"
        ),
        pytest.param(
            TEAM_A, None, False, "namespaces", "team-b", "get", False, id="other-namespace-object"
        ),
        pytest.param(
            TEAM_A, None, False, "namespaces", "team-a", "delete", False, id="delete-own-namespace"
        ),
        pytest.param(
            TEAM_A, None, False, "namespaces", "team-a", "update", False, id="update-own-namespace"
        ),
        pytest.param(
            TEAM_A, "team-a", False, "nodes", "team-a", "get", False, id="other-cluster-kind"
        ),
    ],
)
def test_authorize(
    principal: Principal,
    namespace: str | None,
    namespaced: bool,
    plural: str,
    name: str | None,
    verb: str,
    allowed: bool,
) -> None:
    def call() -> None:
        authorize(
            principal,
            namespace=namespace,
            namespaced=namespaced,
            plural=plural,
            name=name,
            verb=verb,
        )

    if allowed:
        call()
    else:
        with pytest.raises(Forbidden, match=f"token for namespace 'team-a' cannot {verb}"):
            call()


def test_forbidden_message_says_where() -> None:
    with pytest.raises(Forbidden, match="in namespace 'team-b'"):
        authorize(TEAM_A, namespace="team-b", namespaced=True, plural="secrets")
    with pytest.raises(Forbidden, match="in cluster scope"):
        authorize(TEAM_A, namespace=None, namespaced=True, plural="secrets", verb="list")
