"""The platform starts, answers health checks without a token, and needs one elsewhere."""

from __future__ import annotations

import httpx
from harness import RunningPlatform

from cnai import Client


def test_health_needs_no_token_but_api_does(platform: RunningPlatform) -> None:
    assert httpx.get(f"{platform.url}/healthz").text == "ok"
    resp = httpx.get(f"{platform.url}/apis/cnai.io/v1alpha1/namespaces")
    assert resp.status_code == 401
    assert resp.json()["reason"] == "Unauthorized"


def test_default_namespace_exists_from_the_start(client: Client) -> None:
    names = [ns.metadata.name for ns in client.list("namespaces").items]
    assert "default" in names
