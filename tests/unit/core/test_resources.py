"""ResourceService: the API verbs with admission and the namespace rules applied."""

from __future__ import annotations

import pytest

from cnai.core.errors import Conflict, Forbidden, Invalid, NotFound
from cnai.core.kernel import NAMESPACE_FINALIZER
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.store.sqlite import SQLiteStore

from .builders import make_namespace, make_secret

pytestmark = pytest.mark.anyio


@pytest.fixture
async def service(store: SQLiteStore, registry: Registry) -> ResourceService:
    svc = ResourceService(registry, store)
    await svc.create("namespaces", make_namespace("default").build())
    await svc.create("namespaces", make_namespace("team-a").build())
    return svc


async def test_unknown_resource_type_is_not_found(service: ResourceService) -> None:
    with pytest.raises(NotFound, match="no resource type 'gadgets'"):
        await service.list("gadgets")


async def test_create_defaults_the_namespace(service: ResourceService) -> None:
    created = await service.create("secrets", make_secret("s").ns(None).build())
    assert created["metadata"]["namespace"] == "default"


async def test_create_takes_the_namespace_from_the_body(service: ResourceService) -> None:
    created = await service.create("secrets", make_secret("s", "team-a").build())
    assert created["metadata"]["namespace"] == "team-a"


async def test_create_ignores_a_client_status(service: ResourceService) -> None:
    created = await service.create(
        "namespaces", make_namespace("team-b").status(phase="Terminating").build()
    )
    assert created["status"] == {"phase": "Active"}
    assert created["metadata"]["finalizers"] == [NAMESPACE_FINALIZER]


async def test_create_in_a_missing_namespace_is_not_found(service: ResourceService) -> None:
    with pytest.raises(NotFound, match="namespace 'ghost' not found"):
        await service.create("secrets", make_secret("s", "ghost").build(), "ghost")


async def test_create_in_a_terminating_namespace_is_forbidden(service: ResourceService) -> None:
    await service.delete("namespaces", None, "team-a")
    with pytest.raises(Forbidden, match="'team-a' is terminating"):
        await service.create("secrets", make_secret("s", "team-a").build(), "team-a")


async def test_create_runs_admission(service: ResourceService) -> None:
    with pytest.raises(Invalid, match=r"metadata\.name"):
        await service.create("secrets", make_secret("Bad").build(), "default")


async def test_default_namespace_cannot_be_deleted(service: ResourceService) -> None:
    with pytest.raises(Forbidden, match="'default' cannot be deleted"):
        await service.delete("namespaces", None, "default")


async def test_deleting_a_namespace_marks_it_terminating(service: ResourceService) -> None:
    marked = await service.delete("namespaces", None, "team-a")
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["status"]["phase"] == "Terminating"
    assert (await service.get("namespaces", None, "team-a"))["status"]["phase"] == "Terminating"
    again = await service.delete("namespaces", None, "team-a")
    assert again["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]


async def test_update_keeps_status_and_checks_versions(service: ResourceService) -> None:
    created = await service.create("secrets", make_secret("s").data(k="a").build(), "default")
    updated = await service.update("secrets", dict(created, data={"k": "Yg=="}), "default", "s")
    assert updated["data"] == {"k": "Yg=="}
    assert updated["metadata"]["generation"] == 2
    with pytest.raises(Conflict):
        await service.update("secrets", dict(created, type="x"), "default", "s")


async def test_status_update_only_changes_status(service: ResourceService) -> None:
    ns = await service.get("namespaces", None, "team-a")
    body = dict(
        ns, status={"phase": "Terminating"}, metadata={**ns["metadata"], "labels": {"a": "b"}}
    )
    updated = await service.update("namespaces", body, None, "team-a", status=True)
    assert updated["status"] == {"phase": "Terminating"}
    assert "labels" not in updated["metadata"]  # empty metadata maps are omitted


async def test_status_update_of_a_kind_without_status_is_not_found(
    service: ResourceService,
) -> None:
    await service.create("secrets", make_secret("s").build(), "default")
    with pytest.raises(NotFound, match="Secret has no status subresource"):
        await service.update("secrets", make_secret("s").build(), "default", "s", status=True)


async def test_list_parses_selectors(service: ResourceService) -> None:
    await service.create("secrets", make_secret("a").labels(app="web").build(), "default")
    await service.create("secrets", make_secret("b").labels(app="db").build(), "default")
    await service.create("secrets", make_secret("c", "team-a").labels(app="web").build(), "team-a")
    listed = await service.list("secrets", None, "app=web", "metadata.namespace=team-a")
    assert [o["metadata"]["name"] for o in listed.items] == ["c"]
    in_default = await service.list("secrets", "default", "app in (web,db)")
    assert [o["metadata"]["name"] for o in in_default.items] == ["a", "b"]


async def test_namespace_argument_is_ignored_for_cluster_scoped_kinds(
    service: ResourceService,
) -> None:
    assert (await service.get("namespaces", "whatever", "team-a"))["metadata"]["name"] == "team-a"
    assert len((await service.list("namespaces", "whatever")).items) == 2
