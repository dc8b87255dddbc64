"""The handle tests get on a running app (see conftest.py for how it is built)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from cnai.core.server.app import PREFIX, ApiServer
from cnai.core.store.sqlite import SQLiteStore

MAX_BODY = 4096


@dataclass
class Api:
    """A running app: its client, its state, and tokens of each kind."""

    client: httpx.AsyncClient
    server: ApiServer
    store: SQLiteStore
    admin: str
    team_a: str

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin}"}

    async def request(
        self, method: str, path: str, token: str | None = None, **kw: Any
    ) -> httpx.Response:
        """A request to ``PREFIX + path`` with ``token`` (default: the admin token)."""
        headers = {**self.headers(token), **kw.pop("headers", {})}
        return await self.client.request(method, PREFIX + path, headers=headers, **kw)
