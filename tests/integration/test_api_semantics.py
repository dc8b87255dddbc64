"""API semantics over real HTTP: generation, status, conflicts, finalizers, patch, apply.

Each test works in its own namespace (the session platform is shared).
"""

from __future__ import annotations

import base64
import re

import httpx
import pytest
from harness import RunningPlatform, unique, wait_until

from cnai import AsyncClient, Client
from cnai.core.errors import AlreadyExists, BadRequest, Conflict, Forbidden, Invalid, NotFound
from cnai.core.kinds import Event, Namespace, NamespacePhase, ObjectReference, Secret
from cnai.core.meta import ObjectMeta

API = "/apis/cnai.io/v1alpha1"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# -- generation, status and server-owned metadata ------------------------------------------


def test_generation_bumps_only_when_the_spec_changes(client: Client, namespace: str) -> None:
    s = client.create(Secret.new("gen", namespace, data={"k": b64("v1")}))
    assert s.metadata.generation == 1
    s.metadata.labels = {"app": "web"}
    s.metadata.annotations = {"note": "labels and annotations are not spec"}
    s = client.update(s)
    assert (s.metadata.generation, s.metadata.labels) == (1, {"app": "web"})
    s.data["k"] = b64("v2")
    s = client.update(s)
    assert s.metadata.generation == 2
    s.type = "example.com/other"
    assert client.update(s).metadata.generation == 3


def test_server_owned_metadata_survives_an_update(client: Client, namespace: str) -> None:
    s = client.create(Secret.new("owned", namespace))
    forged = s.model_copy(deep=True)
    forged.metadata.uid = "forged-uid"
    forged.metadata.generation = 99
    forged.metadata.labels = {"changed": "yes"}
    out = client.update(forged)
    assert out.metadata.uid == s.metadata.uid
    assert out.metadata.generation == 1
    assert out.metadata.creation_timestamp == s.metadata.creation_timestamp
    assert int(out.metadata.resource_version or 0) > int(s.metadata.resource_version or 0)


def test_update_keeps_status(client: Client) -> None:
    ns = client.create(Namespace.new(unique("keep-status")))
    ns.status.phase = NamespacePhase.TERMINATING
    ns.metadata.labels = {"team": "a"}
    out = client.update(ns)
    assert out.metadata.labels == {"team": "a"}
    assert out.status.phase == NamespacePhase.ACTIVE


def test_status_update_changes_only_status(client: Client) -> None:
    ns = client.create(Namespace.new(unique("status-only")))
    ns.status.phase = NamespacePhase.TERMINATING
    ns.metadata.labels = {"ignored": "yes"}
    out = client.update_status(ns)
    assert out.status.phase == NamespacePhase.TERMINATING
    assert out.metadata.labels == {}
    assert out.metadata.generation == 1
    assert client.get(Namespace, ns.metadata.name).status.phase == NamespacePhase.TERMINATING


def test_create_ignores_a_client_supplied_status(client: Client) -> None:
    name = unique("no-status")
    body = Namespace.new(name).to_dict()
    body["status"] = {"phase": "Terminating"}
    client.create(body)
    assert client.get(Namespace, name).status.phase == NamespacePhase.ACTIVE


# -- concurrency and identity ----------------------------------------------------------


def test_stale_resource_version_is_a_conflict(
    client: Client, http: httpx.Client, namespace: str
) -> None:
    first = client.create(Secret.new("race", namespace))
    winner = first.model_copy(deep=True)
    winner.metadata.labels = {"who": "winner"}
    client.update(winner)
    first.metadata.labels = {"who": "loser"}
    with pytest.raises(Conflict) as exc:
        client.update(first)
    assert exc.value.status_code == 409
    assert "stale" in str(exc.value)
    assert client.get(Secret, "race", namespace).metadata.labels == {"who": "winner"}
    stale = first.metadata.resource_version
    resp = http.delete(f"{API}/namespaces/{namespace}/secrets/race?resourceVersion={stale}")
    assert (resp.status_code, resp.json()["reason"]) == (409, "Conflict")
    assert client.get(Secret, "race", namespace)


def test_create_twice_is_already_exists(client: Client, http: httpx.Client, namespace: str) -> None:
    client.create(Secret.new("twice", namespace))
    with pytest.raises(AlreadyExists):
        client.create(Secret.new("twice", namespace))
    body = Secret.new("twice", namespace).to_dict()
    resp = http.post(f"{API}/namespaces/{namespace}/secrets", json=body)
    assert (resp.status_code, resp.json()["reason"]) == (409, "AlreadyExists")


def test_generate_name_gives_distinct_names(client: Client, namespace: str) -> None:
    body = {"apiVersion": "cnai.io/v1alpha1", "kind": "Secret", "metadata": {"generateName": "g-"}}
    names = {client.create(body, namespace).metadata.name for _ in range(5)}
    assert len(names) == 5
    assert all(n.startswith("g-") for n in names)


def test_the_same_name_in_two_namespaces_is_two_objects(client: Client) -> None:
    a, b = unique("ns-a"), unique("ns-b")
    for ns in (a, b):
        client.create(Namespace.new(ns))
    sa = client.create(Secret.new("same", a, string_data={"k": "a"}))
    sb = client.create(Secret.new("same", b, string_data={"k": "b"}))
    assert sa.metadata.uid != sb.metadata.uid
    client.delete(Secret, "same", a)
    assert client.get(Secret, "same", b).decoded() == {"k": "b"}


# -- finalizers and deletion ---------------------------------------------------------------


def test_finalizers_hold_a_deleted_object_until_removed(client: Client, namespace: str) -> None:
    held = Secret.new("held", namespace)
    held.metadata.finalizers = ["example.com/cleanup"]
    client.create(held)
    marked = client.delete(Secret, "held", namespace)
    assert marked.metadata.deletion_timestamp is not None
    again = client.delete(Secret, "held", namespace)  # idempotent while held
    assert again.metadata.deletion_timestamp == marked.metadata.deletion_timestamp
    live = client.get(Secret, "held", namespace)
    assert live.metadata.finalizers == ["example.com/cleanup"]
    live.metadata.finalizers.append("example.com/late")
    with pytest.raises(Invalid) as exc:
        client.update(live)
    assert exc.value.causes[0].field == "metadata.finalizers"
    live = client.get(Secret, "held", namespace)
    live.metadata.finalizers = []
    client.update(live)
    with pytest.raises(NotFound):
        client.get(Secret, "held", namespace)


def test_delete_of_a_missing_object_is_not_found(client: Client, namespace: str) -> None:
    with pytest.raises(NotFound):
        client.delete(Secret, "never-was", namespace)


# -- merge patch and stringData ------------------------------------------------------------


def test_json_merge_patch(client: Client, http: httpx.Client, namespace: str) -> None:
    s = Secret.new("patched", namespace, data={"keep": b64("1"), "drop": b64("2")})
    s.metadata.labels = {"a": "1", "b": "2"}
    client.create(s)
    patch = {"metadata": {"labels": {"a": None, "c": "3"}}, "data": {"drop": None}}
    resp = http.patch(
        f"{API}/namespaces/{namespace}/secrets/patched",
        content=httpx.Request("PATCH", "/", json=patch).content,
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert out["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert out["data"] == {"keep": b64("1")}
    assert out["metadata"]["generation"] == 2
    via_sdk = client.patch(Secret, "patched", {"type": "custom"}, namespace)
    assert via_sdk.type == "custom"
    assert via_sdk.data == {"keep": b64("1")}


def test_patch_with_a_stale_resource_version_conflicts(client: Client, namespace: str) -> None:
    s = client.create(Secret.new("patch-race", namespace))
    client.patch(Secret, "patch-race", {"metadata": {"labels": {"x": "1"}}}, namespace)
    stale = {"metadata": {"resourceVersion": s.metadata.resource_version, "labels": {"x": "2"}}}
    with pytest.raises(Conflict):
        client.patch(Secret, "patch-race", stale, namespace)


def test_string_data_is_folded_into_data_and_never_stored(
    client: Client, http: httpx.Client, namespace: str
) -> None:
    created = client.create(
        Secret.new("folded", namespace, data={"a": b64("from-data")}, string_data={"b": "plain"})
    )
    assert created.string_data is None
    assert created.decoded() == {"a": "from-data", "b": "plain"}
    raw = http.get(f"{API}/namespaces/{namespace}/secrets/folded").json()
    assert "stringData" not in raw
    assert raw["data"] == {"a": b64("from-data"), "b": b64("plain")}
    created.string_data = {"a": "overrides-data"}
    updated = client.update(created)
    assert updated.decoded() == {"a": "overrides-data", "b": "plain"}
    listed = http.get(f"{API}/namespaces/{namespace}/secrets").json()["items"]
    assert all("stringData" not in item for item in listed)


def test_immutable_secret_data_cannot_change(client: Client, namespace: str) -> None:
    s = client.create(Secret.new("frozen", namespace, data={"k": b64("v")}, immutable=True))
    s.data["k"] = b64("changed")
    with pytest.raises(Invalid):
        client.update(s)


# -- namespaces ------------------------------------------------------------------------------


def test_namespace_deletion_empties_it_then_removes_it(client: Client) -> None:
    ns = unique("doomed")
    client.create(Namespace.new(ns))
    for i in range(3):
        client.create(Secret.new(f"s{i}", ns))
    ref = ObjectReference(kind="Secret", name="s0", namespace=ns)
    client.create(Event.new("e0", ns, involved_object=ref))
    held = Secret.new("held", ns)
    held.metadata.finalizers = ["example.com/hold"]
    client.create(held)
    gone = client.delete(Namespace, ns)
    assert gone.metadata.deletion_timestamp is not None
    assert gone.status.phase == NamespacePhase.TERMINATING
    with pytest.raises(Forbidden) as exc:
        client.create(Secret.new("late", ns))
    assert "terminating" in str(exc.value)
    wait_until(
        lambda: [s.metadata.name for s in client.list(Secret, ns).items] == ["held"],
        what="the namespace's unheld contents to be deleted",
    )
    assert client.list(Event, ns).items == []
    assert client.get(Namespace, ns).status.phase == NamespacePhase.TERMINATING
    live = client.get(Secret, "held", ns)
    live.metadata.finalizers = []
    client.update(live)

    def namespace_gone() -> bool:
        try:
            client.get(Namespace, ns)
        except NotFound:
            return True
        return False

    wait_until(namespace_gone, what=f"namespace {ns} to disappear")
    assert client.list(Secret, ns).items == []


def test_default_namespace_cannot_be_deleted(client: Client) -> None:
    with pytest.raises(Forbidden):
        client.delete(Namespace, "default")
    assert client.get(Namespace, "default").metadata.deletion_timestamp is None


# -- discovery and OpenAPI -------------------------------------------------------------------


def test_discovery_lists_the_kernel_kinds(http: httpx.Client) -> None:
    doc = http.get(API).json()
    assert (doc["kind"], doc["groupVersion"]) == ("APIResourceList", "cnai.io/v1alpha1")
    by_name = {r["name"]: r for r in doc["resources"]}
    assert {"namespaces", "secrets", "events"} <= set(by_name)
    assert by_name["namespaces"]["shortNames"] == ["ns"]
    assert by_name["namespaces"]["namespaced"] is False
    assert by_name["events"]["shortNames"] == ["ev"]
    assert by_name["secrets"]["shortNames"] == []
    assert by_name["secrets"]["kind"] == "Secret"
    assert by_name["namespaces"]["subresources"] == ["status"]
    assert "watch" in by_name["secrets"]["verbs"]
    groups = http.get("/apis").json()["groups"]
    assert groups[0]["versions"] == [{"groupVersion": "cnai.io/v1alpha1"}]


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document_is_openapi_3_1_with_the_kinds(http: httpx.Client) -> None:
    doc = http.get("/openapi.json").json()
    assert doc["openapi"] == "3.1.0"
    assert doc["info"]["title"] == "cnai API"
    assert doc["info"]["version"]
    schemas = doc["components"]["schemas"]
    for kind in ("Namespace", "Secret", "Event", "Status"):
        assert schemas[kind]["type"] == "object", kind
    assert "stringData" in schemas["Secret"]["properties"]
    assert schemas["Secret"]["additionalProperties"] is False
    for ref in _refs(doc):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    paths = doc["paths"]
    secrets = f"{API}/namespaces/{{namespace}}/secrets"
    assert set(paths[secrets]) == {"get", "post", "parameters"}
    assert set(paths[secrets + "/{name}"]) == {"get", "put", "patch", "delete", "parameters"}
    assert f"{API}/namespaces/{{name}}/status" in paths
    for path, item in paths.items():
        # Every {template} in a path is declared, as OpenAPI requires.
        declared = {p["name"] for p in item["parameters"] if p["in"] == "path"}
        assert declared == set(re.findall(r"{(\w+)}", path)), path
        for method in set(item) & {"get", "put", "post", "patch", "delete"}:
            assert "4XX" in item[method]["responses"], (path, method)


# -- apply -----------------------------------------------------------------------------------


def test_apply_creates_then_leaves_unchanged_then_configures_keeping_status(
    client: Client,
) -> None:
    name = unique("applied")
    manifest = Namespace.new(name).to_dict()
    manifest["status"] = {"phase": "Terminating"}  # a manifest cannot set status
    first = client.apply(manifest)
    assert first.action == "created"
    assert client.apply(manifest).action == "unchanged"
    manifest["metadata"]["labels"] = {"team": "ml"}
    third = client.apply(manifest)
    assert third.action == "configured"
    live = client.get(Namespace, name)
    assert live.metadata.labels == {"team": "ml"}
    assert live.status.phase == NamespacePhase.ACTIVE
    assert live.metadata.uid == first.object.metadata.uid
    assert client.apply(manifest).action == "unchanged"


def test_apply_of_a_secret_updates_data_and_keeps_identity(client: Client, namespace: str) -> None:
    s = Secret.new("applied", namespace, string_data={"k": "v1"})
    created = client.apply(s)
    assert created.action == "created"
    configured = client.apply(Secret.new("applied", namespace, string_data={"k": "v2"}))
    assert configured.action == "configured"
    assert isinstance(configured.object, Secret)
    assert configured.object.decoded() == {"k": "v2"}
    assert configured.object.metadata.uid == created.object.metadata.uid


# -- the async client ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_async_client_round_trip(platform: RunningPlatform) -> None:
    ns = unique("async")
    async with AsyncClient(config_path=platform.config_path) as ac:
        assert (await ac.version())["api"] == "cnai.io/v1alpha1"
        await ac.create(Namespace.new(ns))
        created = await ac.create(Secret.new("s", ns, string_data={"k": "v"}))
        assert (await ac.get(Secret, "s", ns)).metadata.uid == created.metadata.uid
        listed = await ac.list(Secret, ns)
        assert [s.metadata.name for s in listed.items] == ["s"]
        created.metadata.labels = {"via": "async"}
        assert (await ac.update(created)).metadata.labels == {"via": "async"}
        assert (await ac.apply(Secret.new("s", ns, string_data={"k": "v"}))).action in (
            "configured",
            "unchanged",
        )
        events = ac.watch(Secret, ns, resource_version=listed.resource_version, timeout_seconds=10)
        await ac.delete(Secret, "s", ns)
        seen = []
        async for ev in events:
            seen.append(ev.type)
            if ev.type == "DELETED":
                break
        await events.aclose()  # type: ignore[attr-defined]
        assert seen[-1] == "DELETED"
        with pytest.raises(NotFound):
            await ac.get(Secret, "s", ns)
        generic = await ac.get("ns", ns)
        assert generic.kind == "Namespace"


@pytest.mark.anyio
async def test_async_client_delete_with_a_propagation_policy(platform: RunningPlatform) -> None:
    ns = unique("async-orphan")
    async with AsyncClient(config_path=platform.config_path) as ac:
        await ac.create(Namespace.new(ns))
        held = ObjectMeta(name="s", namespace=ns, finalizers=["test.cnai.io/hold"])
        await ac.create(Secret(metadata=held))
        marked = await ac.delete(Secret, "s", ns, propagation_policy="Orphan")
        assert marked.metadata.deletion_timestamp is not None
        assert "orphan" in marked.metadata.finalizers
        with pytest.raises(BadRequest, match="propagationPolicy"):
            await ac.delete(Secret, "s", ns, propagation_policy="orphan")
