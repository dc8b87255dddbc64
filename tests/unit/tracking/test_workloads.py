"""A job's run and token Secret (tracking.workloads) over real stores: one run per job
whatever the retries, pods wait for the token, and the end is recorded once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cnai.core.auth import TokenAuthority
from cnai.core.controllers.types import Request
from cnai.core.errors import NotFound
from cnai.core.kernel import register_kernel
from cnai.core.kinds import Namespace
from cnai.core.pods import Pod
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.store.sqlite import SQLiteStore
from cnai.core.token_secrets import TokenSecretReconciler
from cnai.tracking.store import TrackingStore
from cnai.tracking.workloads import WorkloadTracking, token_secret_name

pytestmark = pytest.mark.anyio
NS = "ml"


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ResourceService]:
    registry = Registry()
    register_kernel(registry)
    store = SQLiteStore(tmp_path / "state.db")
    svc = ResourceService(registry, store)
    await svc.create("namespaces", Namespace.new(NS).to_dict())
    yield svc
    await store.close()


@pytest.fixture
async def runs(tmp_path: Path) -> AsyncIterator[TrackingStore]:
    store = TrackingStore(tmp_path / "tracking.db")
    yield store
    await store.close()


async def _owner(service: ResourceService) -> Pod:
    """Any namespaced object can own a run; a Pod keeps this test free of job kinds."""
    body = {"apiVersion": "cnai.io/v1alpha1", "kind": "Pod", "metadata": {"name": "train"},
            "spec": {"command": ["true"]}}  # fmt: skip
    return Pod.model_validate(await service.create("pods", body, NS))


async def test_the_pods_wait_for_the_token_then_get_run_and_token_by_reference(
    service: ResourceService, runs: TrackingStore
) -> None:
    owner = await _owner(service)
    tracking = WorkloadTracking(service, runs)

    assert await tracking.start(owner) is None  # the Secret was just asked for
    secret = await service.get("secrets", NS, token_secret_name("train"))
    assert secret["type"] == "cnai.io/token"
    assert secret["metadata"]["ownerReferences"][0]["uid"] == owner.metadata.uid
    assert await tracking.start(owner) is None  # still no token

    tokens = TokenAuthority(service.store)
    await TokenSecretReconciler(service, tokens).reconcile(Request(NS, token_secret_name("train")))
    started = await tracking.start(owner)

    assert started is not None
    env = {v.name: v for v in started.env()}
    assert env["CNAI_RUN_ID"].value == started.run_id
    ref = env["CNAI_TOKEN"].value_from
    assert ref is not None
    assert ref.secret_key_ref is not None
    assert (ref.secret_key_ref.name, ref.secret_key_ref.key) == ("train-cnai-token", "token")
    run = await runs.get_run(NS, started.run_id)
    assert (run.owner.kind, run.owner.name, run.owner.uid) == ("Pod", "train", owner.metadata.uid)


async def test_one_run_per_owner_even_when_its_id_was_never_recorded(
    service: ResourceService, runs: TrackingStore
) -> None:
    owner = await _owner(service)
    tracking = WorkloadTracking(service, runs)
    first = await tracking._run(owner, NS, "Default")
    # A controller that crashed before writing the run id into status asks again.
    again = await tracking._run(owner, NS, "Default")
    assert again == first
    assert len(await runs.list_runs(NS)) == 1


async def test_finish_ends_the_run_and_deletes_the_token_secret_once(
    service: ResourceService, runs: TrackingStore
) -> None:
    owner = await _owner(service)
    tracking = WorkloadTracking(service, runs)
    await tracking.start(owner)
    run_id = (await runs.list_runs(NS))[0].id

    await tracking.finish(owner, run_id, succeeded=False)

    run = await runs.get_run(NS, run_id)
    assert run.status == "FAILED"
    assert run.end_ms is not None
    with pytest.raises(NotFound):
        await service.get("secrets", NS, token_secret_name("train"))
    # Again (a later reconcile of the finished job): nothing changes.
    await runs.update_run(NS, run_id, status="KILLED")
    await tracking.finish(owner, run_id, succeeded=True)
    assert (await runs.get_run(NS, run_id)).status == "KILLED"


async def test_a_secret_of_that_name_owned_by_someone_else_is_left_alone(
    service: ResourceService, runs: TrackingStore
) -> None:
    owner = await _owner(service)
    body = {"apiVersion": "cnai.io/v1alpha1", "kind": "Secret",
            "metadata": {"name": token_secret_name("train")}, "stringData": {"k": "v"}}  # fmt: skip
    await service.create("secrets", body, NS)
    tracking = WorkloadTracking(service, runs)

    started = await tracking.start(owner)

    assert started is not None
    assert [v.name for v in started.env()] == ["CNAI_RUN_ID"]
    await tracking.finish(owner, started.run_id, succeeded=True)
    assert (await service.get("secrets", NS, token_secret_name("train")))["data"]
