"""DELETE ?propagationPolicy=Background|Foreground|Orphan, and 507 when the disk is full."""

from __future__ import annotations

import sqlite3

import pytest

from ..builders import b64, make_secret
from .api_harness import Api

pytestmark = pytest.mark.anyio

SECRETS = "/namespaces/team-a/secrets"


async def make(api: Api, name: str) -> None:
    created = await api.request("POST", SECRETS, json=make_secret(name, "team-a").build())
    assert created.status_code == 201, created.text


@pytest.mark.parametrize(
    ("query", "finalizers"),
    [
        pytest.param("", None, id="default-is-background"),
        pytest.param("?propagationPolicy=Background", None, id="background"),
        pytest.param("?propagationPolicy=Foreground", ["foregroundDeletion"], id="foreground"),
        pytest.param("?propagationPolicy=Orphan", ["orphan"], id="orphan"),
    ],
)
async def test_delete_propagation_policy(
    api: Api, query: str, finalizers: list[str] | None
) -> None:
    await make(api, "db")
    resp = await api.request("DELETE", f"{SECRETS}/db{query}")
    assert resp.status_code == 200, resp.text
    meta = resp.json()["metadata"]
    after = await api.request("GET", f"{SECRETS}/db")
    if finalizers is None:
        assert "deletionTimestamp" not in meta
        assert after.status_code == 404
    else:
        assert meta["finalizers"] == finalizers
        assert meta["deletionTimestamp"]
        assert after.json()["metadata"]["finalizers"] == finalizers


@pytest.mark.parametrize("value", ["foreground", "Cascade", ""])
async def test_an_unknown_policy_is_a_400_naming_the_parameter(api: Api, value: str) -> None:
    await make(api, "db")
    resp = await api.request("DELETE", f"{SECRETS}/db", params={"propagationPolicy": value})
    assert resp.status_code == 400
    body = resp.json()
    assert body["reason"] == "BadRequest"
    assert body["message"].startswith("propagationPolicy:")
    assert "Background, Foreground, Orphan" in body["message"]
    assert (await api.request("GET", f"{SECRETS}/db")).status_code == 200  # untouched


async def test_a_namespace_token_may_delete_in_the_foreground_in_its_namespace(api: Api) -> None:
    await make(api, "db")
    resp = await api.request(
        "DELETE", f"{SECRETS}/db?propagationPolicy=Foreground", token=api.team_a
    )
    assert resp.status_code == 200
    other = await api.request(
        "DELETE", "/namespaces/team-b/secrets/db?propagationPolicy=Foreground", token=api.team_a
    )
    assert other.status_code == 403


async def test_a_full_disk_is_a_507_and_earlier_objects_stay(api: Api) -> None:
    await make(api, "kept")
    with sqlite3.connect(api.store.path) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    api.store.set_max_page_count(pages + 2)
    # Each secret is a few KiB: within a handful, the file runs out of pages.
    codes = []
    for i in range(50):
        body = make_secret(f"fill-{i}", "team-a").raw_data({"k": b64("v" * 2500)}).build()
        resp = await api.request("POST", SECRETS, json=body)
        codes.append(resp.status_code)
        if resp.status_code != 201:
            break
    assert codes[-1] == 507, codes
    status = resp.json()
    assert status["reason"] == "InsufficientStorage"
    assert "disk under CNAI_HOME is full" in status["message"]
    failed = f"fill-{len(codes) - 1}"
    assert (await api.request("GET", f"{SECRETS}/{failed}")).status_code == 404
    assert (await api.request("GET", f"{SECRETS}/kept")).status_code == 200

    api.store.set_max_page_count(1_000_000)
    body = make_secret(failed, "team-a").raw_data({"k": b64("v" * 2500)}).build()
    assert (await api.request("POST", SECRETS, json=body)).status_code == 201
