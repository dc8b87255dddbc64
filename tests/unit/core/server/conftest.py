"""The real ASGI app over a real SQLite store and token authority, driven through httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cnai.core.auth import TokenAuthority
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.server.app import create_app
from cnai.core.store.sqlite import SQLiteStore

from ..builders import make_namespace
from .api_harness import MAX_BODY, Api


@pytest.fixture
async def api(store: SQLiteStore, registry: Registry) -> AsyncIterator[Api]:
    service = ResourceService(registry, store)
    for ns in ("default", "team-a", "team-b"):
        await service.create("namespaces", make_namespace(ns).build())
    # Issue with one authority and serve with another that loads them from the store,
    # as the platform does across restarts.
    issuer = TokenAuthority(store)
    admin, _ = await issuer.issue(None, "admin")
    team_a, _ = await issuer.issue("team-a", "team a")
    tokens = TokenAuthority(store)
    await tokens.load()
    app, server = create_app(service, tokens, max_body_bytes=MAX_BODY)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cnai.test") as client:
        yield Api(client, server, store, admin, team_a)
