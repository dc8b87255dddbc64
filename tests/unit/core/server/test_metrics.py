"""The API server's request metrics: what each request is counted as, over the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from cnai.core.auth import TokenAuthority
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.server.app import PREFIX, create_app
from cnai.core.server.metrics import RequestMetrics
from cnai.core.store.sqlite import SQLiteStore

from ..builders import make_namespace, make_secret

pytestmark = pytest.mark.anyio
ITEM = PREFIX + "/namespaces/{ns}/{plural}/{name}"
COLLECTION = PREFIX + "/namespaces/{ns}/{plural}"


class Metered:
    def __init__(self, client: httpx.AsyncClient, registry: CollectorRegistry, token: str):
        self.client, self.registry = client, registry
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return await self.client.request(method, path, headers=headers, **kw)

    def count(self, verb: str, resource: str, route: str, code: int) -> float:
        labels = {"verb": verb, "resource": resource, "route": route, "code": str(code)}
        return self.registry.get_sample_value("cnai_apiserver_requests_total", labels) or 0.0

    def timed(self, verb: str, resource: str, route: str) -> float:
        labels = {"verb": verb, "resource": resource, "route": route}
        name = "cnai_apiserver_request_duration_seconds_count"
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def metered(store: SQLiteStore, registry: Registry) -> AsyncIterator[Metered]:
    service = ResourceService(registry, store)
    await service.create("namespaces", make_namespace("default").build())
    tokens = TokenAuthority(store)
    admin, _ = await tokens.issue(None, "admin")
    metrics = CollectorRegistry()
    app, _ = create_app(service, tokens, metrics=metrics)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cnai.test") as client:
        yield Metered(client, metrics, admin)


async def test_resource_requests_are_counted_by_kubernetes_verb(metered: Metered) -> None:
    secrets = PREFIX + "/namespaces/default/secrets"
    body = make_secret("s1").build()
    assert (await metered.call("POST", secrets, json=body)).status_code == 201
    assert (await metered.call("GET", secrets)).status_code == 200
    assert (await metered.call("GET", secrets + "/s1")).status_code == 200
    assert (await metered.call("GET", secrets + "/nope")).status_code == 404
    assert (await metered.call("DELETE", secrets + "/s1")).status_code == 200

    assert metered.count("create", "secrets", COLLECTION, 201) == 1
    assert metered.count("list", "secrets", COLLECTION, 200) == 1
    assert metered.count("get", "secrets", ITEM, 200) == 1
    assert metered.count("get", "secrets", ITEM, 404) == 1
    assert metered.count("delete", "secrets", ITEM, 200) == 1
    assert metered.timed("get", "secrets", ITEM) == 2


async def test_labels_never_take_what_the_client_sent(metered: Metered) -> None:
    # A plural that is no kind, a path no route matches, a request without a token.
    await metered.call("GET", PREFIX + "/namespaces/default/made-up-things")
    await metered.call("GET", "/no/such/path/at/all")
    await metered.client.get(PREFIX + "/namespaces/default/secrets")

    assert metered.count("GET", "", COLLECTION, 404) == 1
    assert metered.count("GET", "", "", 404) == 1
    assert metered.count("list", "secrets", COLLECTION, 401) == 1
    text = "\n".join(str(s.labels) for m in metered.registry.collect() for s in m.samples)
    assert "made-up-things" not in text
    assert "/no/such/path" not in text


@pytest.mark.parametrize(
    ("method", "params", "query", "verb"),
    [
        pytest.param("GET", {"plural": "secrets", "ns": "a"}, b"", "list", id="list"),
        pytest.param("GET", {"plural": "secrets"}, b"watch=true", "watch", id="watch"),
        pytest.param("GET", {"plural": "secrets"}, b"x=1&watch=1", "watch", id="watch-1"),
        pytest.param("GET", {"plural": "secrets"}, b"nowatch=true", "list", id="not-watch"),
        pytest.param("GET", {"plural": "secrets", "name": "s"}, b"", "get", id="get"),
        pytest.param("PUT", {"plural": "secrets", "name": "s"}, b"", "update", id="update"),
        pytest.param("PATCH", {"plural": "secrets", "name": "s"}, b"", "patch", id="patch"),
    ],
)
def test_verbs(method: str, params: dict[str, str], query: bytes, verb: str) -> None:
    metrics = RequestMetrics(lambda *a: None, CollectorRegistry(), lambda p: p == "secrets")  # type: ignore[arg-type,return-value]

    class Matched:
        path = "/route"

    scope = {
        "type": "http",
        "method": method,
        "route": Matched(),
        "path_params": params,
        "query_string": query,
    }
    assert metrics.classify(scope) == (verb, "secrets", "/route")
