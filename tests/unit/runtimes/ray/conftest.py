"""A local Ray cluster of two nodes (1 CPU each) for the Ray runtime's tests, started
once per session, and a RayRuntime per test in a namespace of its own, whose pods are
all removed when the test ends. Every test module here is marked ``ray``:
``pytest -m ray`` runs them alone, ``pytest -m "not ray"`` skips them."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import socket
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from cnai.runtimes.ray import RayRuntime

OBJECT_STORE_BYTES = 80 * 1024 * 1024
NODE_ARGS: dict[str, Any] = {"num_cpus": 1, "object_store_memory": OBJECT_STORE_BYTES}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")  # not the session's: no Ray daemons while other tests run
def ray_cluster() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    head: dict[str, Any] = {**NODE_ARGS, "include_dashboard": False}
    if importlib.util.find_spec("grpc") is not None:  # ray[client]: serve ray:// too
        head["ray_client_server_port"] = _free_port()
    with warnings.catch_warnings():
        # Ray leaves the client server's log files to the garbage collector.
        warnings.simplefilter("ignore", ResourceWarning)
        cluster = Cluster(initialize_head=True, head_node_args=head)
        gc.collect()
    cluster.client_port = head.get("ray_client_server_port")
    cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, namespace="cnai-tests", log_to_driver=False)
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


async def _remove_all(runtime: RayRuntime) -> None:
    for uid in await runtime.known_pods():
        await runtime.remove(uid)


@pytest.fixture
def runtime(ray_cluster: Any) -> Iterator[RayRuntime]:
    rt = RayRuntime(ray_cluster.address, namespace=f"t-{uuid.uuid4().hex[:8]}")
    yield rt
    asyncio.run(_remove_all(rt))
