"""RayRuntime's gangs and nodes on a real Ray cluster of two 1-CPU nodes: a gang is
reserved whole before any member starts (placement groups), a gang that does not fit
stays pending without running anything, Node objects mirror the Ray nodes, and a lost
Ray node fails its pods with NodeLost."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cnai.core.runtime import ProcessState
from cnai.runtimes.ray import RayRuntime
from cnai.runtimes.ray.placement import node_name

from .builders import make_pod, read_logs, wait_exited, wait_state

pytestmark = [pytest.mark.anyio, pytest.mark.ray, pytest.mark.timeout(90)]

NODE_ARGS: dict[str, Any] = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}


def _gang(size: int, marker_dir: Path, strategy: str = "") -> list[Any]:
    job = uuid.uuid4().hex
    return [
        make_pod()
        .shell(f"touch {marker_dir}/rank{rank}; sleep 30")
        .cpu("1")
        .gang(job, rank, size, strategy)
        .build()
        for rank in range(size)
    ]


async def _wait_files(where: Path, names: list[str]) -> None:
    """Until the members' commands (started after RUNNING is seen) wrote their files."""
    deadline = time.monotonic() + 10
    while sorted(os.listdir(where)) != names:
        assert time.monotonic() < deadline, f"{sorted(os.listdir(where))} != {names}"
        await asyncio.sleep(0.05)


async def _started_node(runtime: RayRuntime, uid: str) -> str:
    started = await asyncio.to_thread(runtime.records.started, uid)
    assert started is not None, f"pod {uid} has no start record"
    return str(started["nodeId"])


async def test_two_member_gang_spans_both_nodes_and_starts(
    runtime: RayRuntime, tmp_path: Path
) -> None:
    members = _gang(2, tmp_path)
    for pod in members:
        await runtime.launch(pod)
    for pod in members:
        await wait_state(runtime, pod.uid, ProcessState.RUNNING)
    nodes = {await _started_node(runtime, pod.uid) for pod in members}
    assert len(nodes) == 2, "each 1-CPU member needs a node of its own"
    await _wait_files(tmp_path, ["rank0", "rank1"])
    group = f"gang-{members[0].pod['metadata']['labels']['cnai.io/trainjob-uid']}-0"
    assert await _group_state(group) == "CREATED"
    for pod in members:
        await runtime.stop(pod.uid, grace_seconds=1)
    for pod in members:
        assert (await wait_exited(runtime, pod.uid)).reason == "Killed"
    assert await _group_state(group) == "REMOVED", "the ended gang still holds its group"


@pytest.mark.parametrize("reverse", [False, True], ids=["in-node-order", "reversed"])
async def test_gang_members_run_on_the_nodes_cnai_placed_them_on(
    runtime: RayRuntime, tmp_path: Path, reverse: bool
) -> None:
    """With the gang's nodes annotated (cnai.training does), rank r's bundle is pinned to
    rank r's Ray node: a pod's nodeName is where it runs, in either order."""
    names = sorted(info.name for info in await runtime.nodes())
    if reverse:
        names.reverse()
    members = _gang(2, tmp_path)
    for rank, pod in enumerate(members):
        assert pod.pod is not None
        pod.pod["metadata"]["annotations"]["cnai.io/gang-nodes"] = ",".join(names)
        pod.pod["spec"]["nodeName"] = names[rank]
        await runtime.launch(pod)
    for rank, pod in enumerate(members):
        await wait_state(runtime, pod.uid, ProcessState.RUNNING)
        assert node_name(await _started_node(runtime, pod.uid)) == names[rank]
    for pod in members:
        await runtime.stop(pod.uid, grace_seconds=1)
    for pod in members:
        await wait_exited(runtime, pod.uid)


async def _group_state(name: str) -> str:
    from ray.util import get_placement_group, placement_group_table

    def state() -> str:
        try:
            return str(placement_group_table(get_placement_group(name))["state"])
        except ValueError:  # a removed group is not found by name
            return "REMOVED"

    return await asyncio.to_thread(state)


@pytest.mark.parametrize(
    ("size", "strategy"),
    [
        pytest.param(3, "", id="3-members-of-1-cpu-on-2-cpus"),
        pytest.param(2, "STRICT_PACK", id="2-members-strict-pack-on-1-cpu-nodes"),
    ],
)
async def test_gang_that_does_not_fit_stays_pending_with_nothing_started(
    runtime: RayRuntime, tmp_path: Path, size: int, strategy: str
) -> None:
    members = _gang(size, tmp_path, strategy)
    for pod in members:
        await runtime.launch(pod)
    await asyncio.sleep(1.5)  # room for a wrongly started member to show
    for pod in members:
        seen = await runtime.observe(pod.uid)
        assert (seen.state, seen.reason) == (ProcessState.PENDING, "WaitingForGang")
        assert f"all {size} members" in seen.message
    assert os.listdir(tmp_path) == [], "a member ran before the whole gang was reserved"


async def test_pending_gang_starts_whole_once_a_node_joins(
    runtime: RayRuntime, ray_cluster: Any, tmp_path: Path
) -> None:
    members = _gang(3, tmp_path)
    for pod in members:
        await runtime.launch(pod)
    assert (await runtime.observe(members[0].uid)).state is ProcessState.PENDING
    node = ray_cluster.add_node(**NODE_ARGS)
    try:
        for pod in members:
            await wait_state(runtime, pod.uid, ProcessState.RUNNING)
        await _wait_files(tmp_path, ["rank0", "rank1", "rank2"])
        for pod in members:
            await runtime.remove(pod.uid)
    finally:
        ray_cluster.remove_node(node)


async def test_nodes_mirror_the_ray_cluster(runtime: RayRuntime) -> None:
    nodes = await runtime.nodes()
    assert len(nodes) == 2
    for info in nodes:
        assert info.capacity["cpu"] == "1"
        assert info.allocatable == info.capacity
        assert info.labels["cnai.io/runtime"] == "ray"
        assert info.name == node_name(info.labels["ray.io/node-id"])
    head = await runtime.node()
    assert head.name in {n.name for n in nodes}


async def test_pod_bound_to_a_node_runs_on_that_ray_node(runtime: RayRuntime) -> None:
    for info in await runtime.nodes():
        pod = make_pod().shell("true").node(info.name).build()
        await runtime.launch(pod)
        await wait_exited(runtime, pod.uid)
        assert await _started_node(runtime, pod.uid) == info.labels["ray.io/node-id"]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


async def test_lost_ray_node_fails_its_pod_with_node_lost(
    runtime: RayRuntime, ray_cluster: Any
) -> None:
    node = ray_cluster.add_node(**NODE_ARGS, resources={"victim": 1})
    try:
        # A grandchild of the pod's process: it too must end with the node.
        pod = make_pod().shell("sleep 60 & echo $!; wait").custom("victim").build()
        await runtime.launch(pod)
        await wait_state(runtime, pod.uid, ProcessState.RUNNING)
        lost = node_name(node.node_id)
        assert lost in {n.name for n in await runtime.nodes()}
        while not (out := await read_logs(runtime, pod.uid)):
            await asyncio.sleep(0.05)
        pid = int(out)
        assert _alive(pid)
    finally:
        ray_cluster.remove_node(node)
    began = time.monotonic()
    seen = await wait_exited(runtime, pod.uid)
    assert (seen.reason, seen.exit_code) == ("NodeLost", None)
    assert lost in seen.message
    assert time.monotonic() - began < 30
    assert lost not in {n.name for n in await runtime.nodes()}
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not _alive(pid), "the pod's process outlived its Ray node"
