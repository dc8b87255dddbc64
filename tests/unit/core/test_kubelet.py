"""The pod controller stepped against a real store and a fake runtime whose processes the
test moves between states (DESIGN.md section 6): binding, launch, status, deletion."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from cnai.core.clock import FakeClock
from cnai.core.controllers.types import Request
from cnai.core.errors import NotFound
from cnai.core.events import EventRecorder
from cnai.core.kernel import POD_FINALIZER
from cnai.core.kinds import Namespace
from cnai.core.kubelet import PodReconciler, fit, status_from, sweep_orphans, sync_node
from cnai.core.nodes import sync_nodes
from cnai.core.pods import Pod
from cnai.core.registry import Registry
from cnai.core.resources import ResourceService
from cnai.core.runtime import NodeInfo, Observation, PodLaunch, ProcessState
from cnai.core.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio
NODE = "node-a"


@dataclass
class FakeRuntime:
    """Records what the controller asks; the test decides what processes do."""

    name: str = "fake"
    processes: dict[str, Observation] = field(default_factory=dict)
    launched: list[PodLaunch] = field(default_factory=list)
    stopped: list[tuple[str, float]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    gpus: int = 2

    async def launch(self, pod: PodLaunch) -> None:
        if pod.uid not in self.processes:
            self.launched.append(pod)
            self.processes[pod.uid] = Observation(ProcessState.RUNNING)

    async def stop(self, uid: str, grace_seconds: float) -> None:
        self.stopped.append((uid, grace_seconds))

    async def observe(self, uid: str) -> Observation:
        return self.processes.get(uid, Observation(ProcessState.NOT_FOUND))

    async def known_pods(self) -> list[str]:
        return list(self.processes)

    async def logs(
        self, uid: str, *, follow: bool = False, offset: int = 0
    ) -> AsyncIterator[bytes]:
        yield b""

    async def remove(self, uid: str) -> None:
        self.removed.append(uid)
        self.processes.pop(uid, None)

    async def node(self) -> NodeInfo:
        cap = {"cpu": "2", "memory": "4Gi", "gpu": str(self.gpus)}
        gpus: list[dict[str, object]] = [{"index": i, "name": "GPU"} for i in range(self.gpus)]
        return NodeInfo(NODE, cap, dict(cap), gpus=gpus, memory_enforcement="rss")

    def exit(self, uid: str, code: int, reason: str = "") -> None:
        self.processes[uid] = Observation(ProcessState.EXITED, exit_code=code, reason=reason)


SERVER = "http://127.0.0.1:9"


@dataclass
class World:
    service: ResourceService
    runtime: FakeRuntime
    kubelet: PodReconciler

    async def step(self, name: str, ns: str = "default") -> float | None:
        return (await self.kubelet.reconcile(Request(ns, name))).requeue_after

    async def pod(self, name: str, ns: str = "default") -> dict[str, Any]:
        return await self.service.get("pods", ns, name)

    async def events(self, name: str) -> set[str]:
        items = (await self.service.list("events", "default")).items
        return {e["reason"] for e in items if e["involvedObject"]["name"] == name}


@pytest.fixture
async def world(store: SQLiteStore, registry: Registry) -> World:
    service = ResourceService(registry, store)
    await service.create("namespaces", Namespace.new("default").to_dict())
    runtime = FakeRuntime()
    assert await sync_node(service, runtime) == NODE
    recorder = EventRecorder(store, "pod-controller")
    kubelet = PodReconciler(
        service, runtime, FakeClock(), recorder, NODE, poll_seconds=0.5, server_url=SERVER
    )
    return World(service, runtime, kubelet)


def pod(
    name: str, *, cpu: str | None = None, gpu: int | None = None, **spec: Any
) -> dict[str, Any]:
    requests: dict[str, Any] = {}
    if cpu:
        requests["cpu"] = cpu
    if gpu:
        requests["gpu"] = gpu
    body_spec = {"command": ["python3", "-c", "print(1)"], "resources": {"requests": requests}}
    body_spec.update(spec)
    return {
        "apiVersion": "cnai.io/v1alpha1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": body_spec,
    }


async def run_to_running(world: World, name: str) -> dict[str, Any]:
    await world.step(name)  # bind
    await world.step(name)  # launch
    return await world.pod(name)


async def test_a_pods_own_variables_win_over_what_the_platform_tells_it(world: World) -> None:
    env = [
        {"name": "CNAI_SERVER", "value": "http://elsewhere"},
        {"name": "CNAI_NAMESPACE", "value": "x"},
    ]
    await world.service.create("pods", pod("own", env=env))
    await world.step("own")
    await world.step("own")
    launched = world.runtime.launched[0].env
    assert (launched["CNAI_SERVER"], launched["CNAI_NAMESPACE"]) == ("http://elsewhere", "x")


async def test_pod_is_bound_launched_and_reported_running(world: World) -> None:
    await world.service.create(
        "secrets",
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "data": {"user": base64.b64encode(b"alice").decode()},
        },
    )
    spec = {
        "args": ["--fast"],
        "workingDir": "/tmp",
        "env": [
            {"name": "PLAIN", "value": "1"},
            {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
        ],
        "resources": {"limits": {"memory": "64Mi"}, "requests": {"cpu": "500m"}},
        "terminationGracePeriodSeconds": 7,
    }
    await world.service.create("pods", pod("p1", **spec))
    created = await world.pod("p1")
    assert POD_FINALIZER in created["metadata"]["finalizers"]
    assert await world.step("p1") == 0.0
    assert (await world.pod("p1"))["spec"]["nodeName"] == NODE
    assert await world.step("p1") == 0.5  # running pods are polled
    launch = world.runtime.launched[0]
    assert launch.command == ("python3", "-c", "print(1)", "--fast")
    # Every pod is told where the platform is and which namespace it is in.
    assert launch.env == {
        "CNAI_SERVER": SERVER,
        "CNAI_NAMESPACE": "default",
        "PLAIN": "1",
        "USER_NAME": "alice",
    }
    assert launch.working_dir == "/tmp"
    assert launch.memory_limit_bytes == 64 * 2**20
    assert launch.cpu_request == 0.5
    assert launch.grace_seconds == 7
    assert (await world.pod("p1"))["status"]["phase"] == "Running"
    assert await world.events("p1") == {"Scheduled", "Started"}


@pytest.mark.parametrize(
    ("code", "reason", "phase", "want_reason"),
    [
        pytest.param(0, "", "Succeeded", "Completed", id="exit-0-succeeds"),
        pytest.param(3, "", "Failed", "Error", id="exit-3-fails-with-error"),
        pytest.param(137, "OOMKilled", "Failed", "OOMKilled", id="oom-kill-keeps-its-reason"),
    ],
)
async def test_exit_code_becomes_phase_and_reason(
    world: World, code: int, reason: str, phase: str, want_reason: str
) -> None:
    await world.service.create("pods", pod("p"))
    uid = (await run_to_running(world, "p"))["metadata"]["uid"]
    world.runtime.exit(uid, code, reason)
    assert await world.step("p") is None
    status = (await world.pod("p"))["status"]
    assert (status["phase"], status["reason"], status["exitCode"]) == (phase, want_reason, code)
    assert await world.events("p") == {"Scheduled", "Started", want_reason}


async def test_running_pod_is_adopted_not_started_twice(world: World) -> None:
    await world.service.create("pods", pod("p"))
    await run_to_running(world, "p")
    rv = (await world.pod("p"))["metadata"]["resourceVersion"]
    for _ in range(3):
        await world.step("p")
    assert len(world.runtime.launched) == 1
    assert (await world.pod("p"))["metadata"]["resourceVersion"] == rv  # no status rewrite


async def test_pod_that_does_not_fit_waits_with_the_reason_then_starts(world: World) -> None:
    await world.service.create("pods", pod("big", cpu="1500m"))
    await run_to_running(world, "big")
    await world.service.create("pods", pod("next", cpu="1"))
    assert await world.step("next") == 1.0
    status = (await world.pod("next"))["status"]
    assert status["reason"] == "Unschedulable"
    assert "insufficient cpu" in status["message"]
    world.runtime.exit((await world.pod("big"))["metadata"]["uid"], 0)
    await world.step("big")
    await run_to_running(world, "next")
    assert (await world.pod("next"))["status"]["phase"] == "Running"


async def test_gpus_are_pinned_to_distinct_devices(world: World) -> None:
    for name in ("g1", "g2", "g3"):
        await world.service.create("pods", pod(name, gpu=1))
    await run_to_running(world, "g1")
    await run_to_running(world, "g2")
    pinned = {launch.gpu_indices for launch in world.runtime.launched}
    assert pinned == {(0,), (1,)}
    await world.step("g3")
    assert (await world.pod("g3"))["status"]["reason"] == "Unschedulable"


async def test_missing_secret_keeps_the_pod_pending_until_it_exists(world: World) -> None:
    ref = {"secretKeyRef": {"name": "later", "key": "k"}}
    await world.service.create("pods", pod("p", env=[{"name": "K", "valueFrom": ref}]))
    await world.step("p")
    assert await world.step("p") == 2.0
    status = (await world.pod("p"))["status"]
    assert (status["phase"], status["reason"]) == ("Pending", "CreateContainerConfigError")
    assert "later" in status["message"]
    assert world.runtime.launched == []
    await world.service.create(
        "secrets",
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "Secret",
            "metadata": {"name": "later", "namespace": "default"},
            "data": {"k": base64.b64encode(b"v").decode()},
        },
    )
    await world.step("p")
    assert world.runtime.launched[0].env == {
        "CNAI_SERVER": SERVER,
        "CNAI_NAMESPACE": "default",
        "K": "v",
    }


async def test_deleting_a_running_pod_stops_it_then_removes_it(world: World) -> None:
    await world.service.create("pods", pod("p", terminationGracePeriodSeconds=3))
    uid = (await run_to_running(world, "p"))["metadata"]["uid"]
    marked = await world.service.delete("pods", "default", "p")
    assert marked["metadata"]["deletionTimestamp"]
    assert await world.step("p") == 0.5
    assert world.runtime.stopped == [(uid, 3.0)]
    assert (await world.pod("p"))["metadata"]["deletionTimestamp"]  # still there
    world.runtime.exit(uid, 143)
    await world.step("p")
    assert world.runtime.removed == [uid]
    with pytest.raises(NotFound):
        await world.pod("p")


async def test_a_running_pod_the_runtime_lost_fails_as_lost(world: World) -> None:
    await world.service.create("pods", pod("p"))
    uid = (await run_to_running(world, "p"))["metadata"]["uid"]
    del world.runtime.processes[uid]
    await world.step("p")
    status = (await world.pod("p"))["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "Lost")


async def test_orphan_sweep_removes_only_runtime_state_without_a_pod(world: World) -> None:
    await world.service.create("pods", pod("p"))
    uid = (await run_to_running(world, "p"))["metadata"]["uid"]
    world.runtime.processes["gone-uid"] = Observation(ProcessState.EXITED, exit_code=0)
    assert await sweep_orphans(world.service, world.runtime) == ["gone-uid"]
    assert uid in world.runtime.processes


RUNNING_AT_IP = Observation(ProcessState.RUNNING, address="10.244.1.7")


@pytest.mark.parametrize(
    ("observation", "current", "pod_ip"),
    [
        pytest.param(RUNNING_AT_IP, {}, "10.244.1.7", id="a-kubernetes-pods-ip-is-recorded"),
        pytest.param(
            Observation(ProcessState.PENDING, reason="ContainerCreating", address="10.244.1.7"),
            {},
            "10.244.1.7",
            id="recorded-while-its-container-is-created",
        ),
        pytest.param(
            Observation(ProcessState.EXITED, exit_code=0),
            {"phase": "Running", "podIP": "10.244.1.7"},
            "10.244.1.7",
            id="kept-when-the-ended-pod-reports-none",
        ),
        pytest.param(
            Observation(ProcessState.RUNNING), {}, None, id="a-local-process-has-none-loopback"
        ),
    ],
)
def test_the_pods_address_is_recorded_and_kept(
    observation: Observation, current: dict[str, Any], pod_ip: str | None
) -> None:
    assert status_from(observation, current, NODE).get("podIP") == pod_ip


async def test_a_running_pods_address_reaches_its_status(world: World) -> None:
    await world.service.create("pods", pod("p"))
    uid = (await run_to_running(world, "p"))["metadata"]["uid"]
    world.runtime.processes[uid] = RUNNING_AT_IP
    await world.step("p")
    stored = await world.pod("p")
    assert stored["status"]["podIP"] == "10.244.1.7"
    assert Pod.model_validate(stored).status.pod_ip == "10.244.1.7"


@pytest.mark.parametrize(
    ("want", "others", "ok"),
    [
        pytest.param({"cpu": "1"}, [{"cpu": "1"}], True, id="exactly-fills-the-node"),
        pytest.param({"cpu": "1"}, [{"cpu": "1500m"}], False, id="half-a-core-short"),
        pytest.param({"memory": "3Gi"}, [{"memory": "2Gi"}], False, id="memory-short"),
        pytest.param({}, [{"cpu": "2"}], True, id="no-requests-always-fit"),
    ],
)
def test_fit(want: dict[str, str], others: list[dict[str, str]], ok: bool) -> None:
    def as_pod(requests: dict[str, str]) -> dict[str, Any]:
        return {"spec": {"resources": {"requests": requests}}, "metadata": {}}

    verdict = fit(as_pod(want), [as_pod(o) for o in others], {"cpu": "2", "memory": "4Gi"}, 0)
    assert verdict.ok is ok


@pytest.mark.parametrize(
    ("age", "delay"),
    [
        pytest.param(0.1, 0.05, id="just-started-looked-at-soon"),
        pytest.param(2.0, 0.2, id="a-tenth-of-its-age"),
        pytest.param(60.0, 0.5, id="long-running-at-the-poll-interval"),
    ],
)
async def test_a_young_process_is_looked_at_sooner(world: World, age: float, delay: float) -> None:
    """Short processes are seen to end within tens of milliseconds; long ones cost one
    look per poll interval."""
    from datetime import timedelta

    from cnai.core.runtime import Observation, ProcessState

    now = world.kubelet.clock.now()
    seen = Observation(ProcessState.RUNNING, started_at=now - timedelta(seconds=age))
    assert world.kubelet._poll_delay(seen) == pytest.approx(delay)


# -- a multi-node runtime (Ray): one controller for several nodes ---------------------------


@dataclass
class FakeCluster(FakeRuntime):
    """A multi-node runtime: two 2-CPU machines without GPUs."""

    machines: tuple[str, ...] = ("ray-a", "ray-b")

    async def nodes(self) -> list[NodeInfo]:
        cap = {"cpu": "2", "memory": "4Gi"}
        return [NodeInfo(name, cap, dict(cap)) for name in self.machines]


@pytest.fixture
async def cluster(store: SQLiteStore, registry: Registry) -> World:
    service = ResourceService(registry, store)
    await service.create("namespaces", Namespace.new("default").to_dict())
    runtime = FakeCluster(gpus=0)
    names = set(await sync_nodes(service, runtime))
    recorder = EventRecorder(store, "pod-controller")
    kubelet = PodReconciler(service, runtime, FakeClock(), recorder, names, server_url=SERVER)
    return World(service, runtime, kubelet)


async def test_pods_bound_to_either_node_are_launched_with_their_own_node(
    cluster: World,
) -> None:
    for name, node in (("on-a", "ray-a"), ("on-b", "ray-b"), ("elsewhere", "node-x")):
        await cluster.service.create("pods", pod(name, nodeName=node))
        await cluster.step(name)
    assert sorted(launch.name for launch in cluster.runtime.launched) == ["on-a", "on-b"]
    for name, node in (("on-a", "ray-a"), ("on-b", "ray-b")):
        status = (await cluster.pod(name))["status"]
        assert (status["phase"], status["nodeName"]) == ("Running", node)
    elsewhere = await cluster.pod("elsewhere")  # another runtime's node: left alone
    assert (elsewhere["status"]["phase"], elsewhere["status"]["nodeName"]) == ("Pending", "")


async def test_an_unbound_pod_goes_to_the_first_node_where_it_fits(cluster: World) -> None:
    await cluster.service.create("pods", pod("big", cpu="1500m", nodeName="ray-a"))
    await cluster.step("big")
    await cluster.service.create("pods", pod("next", cpu="1"))
    await run_to_running(cluster, "next")
    placed = await cluster.pod("next")
    assert (placed["spec"]["nodeName"], placed["status"]["nodeName"]) == ("ray-b", "ray-b")
    assert "started 'python3' on ray-b" in {
        e["message"] for e in (await cluster.service.list("events", "default")).items
    }


async def test_a_pod_that_fits_nowhere_says_why_on_each_node(cluster: World) -> None:
    await cluster.service.create("pods", pod("huge", cpu="3"))
    assert await cluster.step("huge") == 1.0
    status = (await cluster.pod("huge"))["status"]
    assert (status["phase"], status["reason"]) == ("Pending", "Unschedulable")
    assert status["message"].startswith("ray-a: insufficient cpu")
    assert "; ray-b: insufficient cpu" in status["message"]


async def test_a_lost_node_is_not_bound_to(cluster: World) -> None:
    runtime = cluster.runtime
    assert isinstance(runtime, FakeCluster)
    runtime.machines = ("ray-b",)
    await sync_nodes(cluster.service, runtime)  # ray-a: NotReady, still in the set
    await cluster.service.create("pods", pod("p"))
    await cluster.step("p")
    assert (await cluster.pod("p"))["spec"]["nodeName"] == "ray-b"
