"""Token Secrets stepped by hand against a real store: issued once, revoked with the
Secret, never left valid after a lost write or a restart."""

from __future__ import annotations

import base64

import pytest

from cnai.core.auth import TokenAuthority
from cnai.core.controllers.types import Request
from cnai.core.errors import Conflict, FieldError, Invalid
from cnai.core.kinds import Namespace
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.store.protocol import Obj
from cnai.core.store.sqlite import SQLiteStore
from cnai.core.token_secrets import TokenSecretReconciler, sweep_token_secrets

pytestmark = pytest.mark.anyio

NS = "team"


@pytest.fixture
async def service(store: SQLiteStore, registry: Registry) -> ResourceService:
    svc = ResourceService(registry, store)
    await svc.create("namespaces", Namespace.new(NS).to_dict())
    return svc


@pytest.fixture
async def tokens(store: SQLiteStore) -> TokenAuthority:
    authority = TokenAuthority(store)
    await authority.load()
    return authority


def _secret(name: str = "s", type: str = "cnai.io/token") -> Obj:
    return {"apiVersion": "cnai.io/v1alpha1", "kind": "Secret", "metadata": {"name": name},
            "type": type}  # fmt: skip


async def _token(service: ResourceService, name: str = "s") -> str:
    data = (await service.get("secrets", NS, name)).get("data") or {}
    return base64.b64decode(data["token"]).decode()


async def test_a_token_secret_gets_a_token_scoped_to_its_namespace_once(
    service: ResourceService, tokens: TokenAuthority
) -> None:
    await service.create("secrets", _secret(), NS)
    reconciler = TokenSecretReconciler(service, tokens)

    await reconciler.reconcile(Request(NS, "s"))
    token = await _token(service)
    principal = tokens.verify(f"Bearer {token}")
    assert principal.namespace == NS
    data = (await service.get("secrets", NS, "s"))["data"]
    assert base64.b64decode(data["namespace"]).decode() == NS

    # Reconciling again keeps the same token: nothing new is issued.
    await reconciler.reconcile(Request(NS, "s"))
    assert await _token(service) == token
    assert len(tokens.records()) == 1


async def test_other_secrets_get_no_token(service: ResourceService, tokens: TokenAuthority) -> None:
    await service.create("secrets", _secret(type="Opaque"), NS)
    await TokenSecretReconciler(service, tokens).reconcile(Request(NS, "s"))
    assert "token" not in ((await service.get("secrets", NS, "s")).get("data") or {})
    assert tokens.records() == []


async def test_deleting_the_secret_revokes_its_token(
    service: ResourceService, tokens: TokenAuthority
) -> None:
    await service.create("secrets", _secret(), NS)
    reconciler = TokenSecretReconciler(service, tokens)
    await reconciler.reconcile(Request(NS, "s"))
    token = await _token(service)

    await service.delete("secrets", NS, "s")
    await reconciler.reconcile(Request(NS, "s"))

    assert tokens.record_of(token) is None
    assert tokens.records() == []


async def test_a_new_secret_of_the_same_name_gets_a_new_token(
    service: ResourceService, tokens: TokenAuthority
) -> None:
    """The old Secret's token dies with it, even if the deletion was never reconciled."""
    await service.create("secrets", _secret(), NS)
    reconciler = TokenSecretReconciler(service, tokens)
    await reconciler.reconcile(Request(NS, "s"))
    old = await _token(service)
    await service.delete("secrets", NS, "s")
    await service.create("secrets", _secret(), NS)

    await reconciler.reconcile(Request(NS, "s"))

    new = await _token(service)
    assert new != old
    assert tokens.record_of(old) is None
    assert tokens.record_of(new) is not None


async def test_a_token_whose_write_lost_is_revoked_at_once(
    service: ResourceService, tokens: TokenAuthority, monkeypatch: pytest.MonkeyPatch
) -> None:
    await service.create("secrets", _secret(), NS)
    reconciler = TokenSecretReconciler(service, tokens)

    async def conflict(*args: object, **kwargs: object) -> Obj:
        raise Conflict("the object has been modified")

    monkeypatch.setattr(service, "update", conflict)
    result = await reconciler.reconcile(Request(NS, "s"))

    assert result.requeue_after == 0.0
    assert tokens.records() == []  # issued, not delivered, revoked


async def test_changing_a_secrets_type_is_refused(
    service: ResourceService, tokens: TokenAuthority
) -> None:
    created = await service.create("secrets", _secret(), NS)
    with pytest.raises(Invalid) as info:
        await service.update("secrets", dict(created, type="Opaque"), NS, "s")
    assert FieldError("type", "field is immutable", "FieldValueForbidden") in info.value.causes
    with pytest.raises(Invalid) as info:
        await service.create("secrets", dict(_secret("t"), immutable=True), NS)
    assert [c.field for c in info.value.causes] == ["immutable"]


async def test_the_sweep_revokes_tokens_of_secrets_deleted_while_down(
    service: ResourceService, tokens: TokenAuthority, store: SQLiteStore
) -> None:
    for name in ("kept", "gone"):
        await service.create("secrets", _secret(name), NS)
        await TokenSecretReconciler(service, tokens).reconcile(Request(NS, name))
    kept, gone = await _token(service, "kept"), await _token(service, "gone")
    await service.delete("secrets", NS, "gone")  # no reconcile: the platform was down

    restarted = TokenAuthority(store)
    await restarted.load()
    revoked = await sweep_token_secrets(service, restarted)

    assert len(revoked) == 1
    assert restarted.record_of(gone) is None
    assert restarted.record_of(kept) is not None
