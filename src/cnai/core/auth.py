"""Bearer-token authentication and namespace-scoped authorization.

A token is ``cnai_<id>_<secret>``: the id (public) finds the record, the secret is 256
random bits stored only as its SHA-256 digest and compared in constant time. An admin
token may do anything; a namespace token may only read and write objects in its own
namespace (and read that Namespace object).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from cnai.core.errors import Forbidden, NotFound, Unauthorized
from cnai.core.meta import now
from cnai.core.store.protocol import Obj, Store

TOKENS = "tokens"  # internal store resource; never served by the resource API
_PREFIX = "cnai_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token id and the namespace it is limited to (None: admin)."""

    token_id: str
    namespace: str | None

    @property
    def is_admin(self) -> bool:
        return self.namespace is None


@dataclass(frozen=True)
class SecretBinding:
    """The token Secret a token was issued into: it lives as long as that Secret
    (same namespace, name and uid) does. See :mod:`cnai.core.token_secrets`."""

    namespace: str
    name: str
    uid: str

    def to_dict(self) -> dict[str, str]:
        return {"namespace": self.namespace, "name": self.name, "uid": self.uid}


@dataclass(frozen=True)
class TokenRecord:
    """What the store keeps about a token: never the token itself."""

    id: str
    digest: str
    namespace: str | None
    description: str = ""
    created: str = ""
    secret: SecretBinding | None = None

    def to_public(self) -> dict[str, object]:
        public: dict[str, object] = {
            "id": self.id,
            "namespace": self.namespace,
            "description": self.description,
            "created": self.created,
        }
        if self.secret is not None:
            public["secret"] = self.secret.to_dict()
        return public


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    if not token.startswith(_PREFIX):
        return None
    token_id, sep, secret = token[len(_PREFIX) :].partition("_")
    if not sep or not token_id or not secret:
        return None
    return token_id, secret


class TokenAuthority:
    """Issues, verifies and revokes tokens; records live in the store, cached in memory."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._records: dict[str, TokenRecord] = {}

    async def load(self) -> None:
        listed = await self._store.list(TOKENS)
        self._records = {r.id: r for r in (_record(o) for o in listed.items)}

    def records(self) -> list[TokenRecord]:
        return sorted(self._records.values(), key=lambda r: r.created)

    def has_admin(self) -> bool:
        return any(r.namespace is None for r in self._records.values())

    def bound_to(self, namespace: str, name: str) -> list[TokenRecord]:
        """The tokens issued into the Secret ``namespace/name`` (any of its uids)."""
        return [
            r
            for r in self._records.values()
            if r.secret is not None and (r.secret.namespace, r.secret.name) == (namespace, name)
        ]

    async def issue(
        self, namespace: str | None, description: str = "", secret: SecretBinding | None = None
    ) -> tuple[str, TokenRecord]:
        """Create a token; the plain token is returned once and never stored. A token
        bound to a ``secret`` is scoped to that Secret's namespace."""
        if secret is not None and namespace != secret.namespace:
            raise ValueError("a token bound to a Secret is scoped to the Secret's namespace")
        token_id = secrets.token_hex(6)
        plain = secrets.token_urlsafe(32)  # 256 bits
        record = TokenRecord(
            token_id, _digest(plain), namespace, description, now().isoformat(), secret
        )
        body: Obj = {
            "metadata": {"name": token_id},
            "digest": record.digest,
            "namespace": namespace,
            "description": description,
            "created": record.created,
        }
        if secret is not None:
            body["secret"] = secret.to_dict()
        await self._store.create(TOKENS, body)
        self._records[token_id] = record
        return f"{_PREFIX}{token_id}_{plain}", record

    async def revoke(self, token_id: str) -> None:
        if token_id not in self._records:
            raise NotFound(f"token {token_id!r} not found")
        await self._store.delete(TOKENS, None, token_id)
        self._records.pop(token_id, None)

    def record_of(self, token: str) -> TokenRecord | None:
        """The record of a plain token, if it is valid."""
        parts = split_token(token.strip())
        record = self._records.get(parts[0]) if parts else None
        if parts is None or record is None:
            return None
        return record if hmac.compare_digest(_digest(parts[1]), record.digest) else None

    def verify(self, authorization: str | None) -> Principal:
        """Check an ``Authorization: Bearer ...`` header; raise Unauthorized."""
        if not authorization:
            raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.partition(" ")
        record = self.record_of(token) if scheme.lower() == "bearer" else None
        if record is None:
            raise Unauthorized("invalid bearer token")
        return Principal(record.id, record.namespace)


def _record(obj: Obj) -> TokenRecord:
    bound = obj.get("secret")
    return TokenRecord(
        id=obj["metadata"]["name"],
        digest=obj["digest"],
        namespace=obj.get("namespace"),
        description=obj.get("description", ""),
        created=obj.get("created", ""),
        secret=SecretBinding(bound["namespace"], bound["name"], bound["uid"]) if bound else None,
    )


def authorize(
    principal: Principal,
    *,
    namespace: str | None,
    namespaced: bool,
    plural: str = "",
    name: str | None = None,
    verb: str = "get",
) -> None:
    """Raise Forbidden unless ``principal`` may act on this path."""
    if principal.is_admin:
        return
    own = principal.namespace
    if namespaced and namespace == own:
        return
    if plural == "namespaces" and name == own and verb == "get":
        return
    where = f"namespace {namespace!r}" if namespaced and namespace else "cluster scope"
    raise Forbidden(f"token for namespace {own!r} cannot {verb} {plural or 'resources'} in {where}")
