"""Token Secrets: API tokens that live exactly as long as the Secret holding them.

A Secret of type ``cnai.io/token`` asks the platform for a token scoped to the Secret's
namespace (as a Kubernetes service-account token Secret does). This controller issues
one, writes it into the Secret's ``data.token`` (with ``data.namespace``), and revokes it
when the Secret is deleted, changes type, or is replaced by a new Secret of the same
name. Workloads receive the token by reference (``secretKeyRef``), so its value is never
in a pod spec; the job controllers create such a Secret for each job they start (owned
by the job, so deleting the job revokes its token) and delete it when the job ends.

Everything is keyed by the Secret's uid, so each reconcile is idempotent: a token that
was issued but whose write into the Secret lost to another write is revoked at once;
tokens bound to a Secret that vanished while the platform was down are revoked by
:func:`sweep_token_secrets` at start.
"""

from __future__ import annotations

import base64
import contextlib
import logging

from cnai.core.auth import SecretBinding, TokenAuthority, TokenRecord
from cnai.core.controllers.types import (
    ControllerContext,
    ControllerFactory,
    ControllerSpec,
    Request,
    Result,
)
from cnai.core.errors import Conflict, NotFound
from cnai.core.kernel import TOKEN_SECRET_TYPE
from cnai.core.resources import ResourceService
from cnai.core.store.protocol import Obj

log = logging.getLogger(__name__)

SECRETS = "secrets"
TOKEN_KEY = "token"  # noqa: S105 - a key name, not a password
NAMESPACE_KEY = "namespace"
COMPONENT = "token-controller"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _live_binding(secret: Obj | None) -> SecretBinding | None:
    """The binding a token of this Secret must have; None if it should hold none."""
    if secret is None or secret.get("type") != TOKEN_SECRET_TYPE:
        return None
    meta = secret["metadata"]
    if meta.get("deletionTimestamp"):
        return None
    return SecretBinding(meta["namespace"], meta["name"], meta["uid"])


class TokenSecretReconciler:
    """Keeps one Secret's token issued (or revoked)."""

    def __init__(self, service: ResourceService, tokens: TokenAuthority) -> None:
        self.service = service
        self.tokens = tokens

    async def reconcile(self, request: Request) -> Result:
        ns, name = request.namespace or "", request.name
        try:
            secret: Obj | None = await self.service.get(SECRETS, ns, name)
        except NotFound:
            secret = None
        binding = _live_binding(secret)
        held = self._held(secret, binding)
        for record in self.tokens.bound_to(ns, name):
            if record.secret != binding or (held is not None and record.id != held.id):
                await self._revoke(record)
        if secret is None or binding is None or held is not None:
            return Result()
        token, record = await self.tokens.issue(ns, f"token Secret {ns}/{name}", binding)
        data = dict(secret.get("data") or {})
        data.update({TOKEN_KEY: _b64(token), NAMESPACE_KEY: _b64(ns)})
        try:
            await self.service.update(SECRETS, dict(secret, data=data), ns, name)
        except (Conflict, NotFound):
            # The Secret changed or went meanwhile: this token reached no one.
            await self._revoke(record)
            return Result(requeue_after=0.0)
        log.debug("issued token %s into secret %s/%s", record.id, ns, name)
        return Result()

    def _held(self, secret: Obj | None, binding: SecretBinding | None) -> TokenRecord | None:
        """The valid token the Secret already holds, bound to it; None if it needs one."""
        if secret is None or binding is None:
            return None
        encoded = (secret.get("data") or {}).get(TOKEN_KEY)
        if not encoded:
            return None
        token = base64.b64decode(encoded).decode("utf-8", "replace")
        record = self.tokens.record_of(token)
        return record if record is not None and record.secret == binding else None

    async def _revoke(self, record: TokenRecord) -> None:
        with contextlib.suppress(NotFound):
            await self.tokens.revoke(record.id)
        log.debug("revoked token %s of secret %s", record.id, record.secret)


async def sweep_token_secrets(service: ResourceService, tokens: TokenAuthority) -> list[str]:
    """Revoke tokens whose Secret is gone (deleted while the platform was down)."""
    live = set()
    for secret in (await service.list(SECRETS)).items:
        binding = _live_binding(secret)
        if binding is not None:
            live.add(binding)
    revoked = []
    for record in tokens.records():
        if record.secret is not None and record.secret not in live:
            with contextlib.suppress(NotFound):
                await tokens.revoke(record.id)
            revoked.append(record.id)
    return revoked


def token_secret_controller(tokens: TokenAuthority) -> ControllerFactory:
    """A ControllerFactory of the token controller."""

    def factory(ctx: ControllerContext) -> ControllerSpec:
        reconciler = TokenSecretReconciler(ctx.service, tokens)
        return ControllerSpec(name=COMPONENT, kind=SECRETS, reconciler=reconciler)

    return factory
