"""KubernetesRuntime against a Kubernetes-API-shaped server on a loopback port: what it
creates, how it stops and removes, how a Pod's status becomes an Observation, logs, and
the cluster's nodes. Pod statuses are written by the test, as a kubelet would."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import anyio
import pytest
from kubeapi import KubeApiServer, serve
from pydantic_core import from_json
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from cnai.core.kubelet import LaunchError, status_from
from cnai.core.runtime import (
    Observation,
    PodLaunch,
    ProcessState,
    ReplicaEndpoint,
    ReplicaSets,
    ReplicaSetSpec,
    Runtime,
)
from cnai.runtimes.kubernetes import runtime as runtime_module
from cnai.runtimes.kubernetes.api import KubeApi
from cnai.runtimes.kubernetes.render import (
    ALL_INTERFACES,
    MODEL_SERVER_PORT,
    POD_UID_LABEL,
    Admission,
    RenderError,
    RenderOptions,
    render_pod,
    render_revision,
)
from cnai.runtimes.kubernetes.runtime import (
    DEPLOYMENTS,
    NODES,
    POD_GROUPS,
    PODS,
    SERVICES,
    KubernetesRuntime,
    node_info,
    observation_of,
)

from .builders import Obj, example, validate

pytestmark = pytest.mark.anyio

PLATFORM_ENV = {"CNAI_SERVER": "http://cnai:8000", "CNAI_NAMESPACE": "quickstart"}
T0 = "2026-01-01T00:00:00Z"
T1 = "2026-01-01T00:00:07Z"


class Cluster:
    """The test server plus what its extra routes saw: DELETE bodies, and log text."""

    def __init__(self) -> None:
        self.deletes: list[tuple[str, Obj]] = []
        self.logs: dict[str, bytes] = {}
        self.log_params: list[dict[str, str]] = []
        self.routes = [
            Route("/api/v1/namespaces/{ns}/pods/{name}/log", self._log, methods=["GET"]),
            Route("/api/v1/namespaces/{ns}/pods/{name}", self._delete, methods=["DELETE"]),
        ]
        self.server: KubeApiServer | None = None

    @property
    def kube(self) -> KubeApiServer:
        assert self.server is not None
        return self.server

    async def _log(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.log_params.append(dict(request.query_params))
        if self.kube.lookup(PODS, request.path_params["ns"], name) is None:
            return JSONResponse({"kind": "Status", "reason": "NotFound", "code": 404}, 404)
        if name not in self.logs:
            message = f'container "main" in pod "{name}" is waiting to start'
            return JSONResponse({"kind": "Status", "message": message, "code": 400}, 400)
        text = self.logs[name]
        return StreamingResponse(iter([text[:5], text[5:]]), media_type="text/plain")

    async def _delete(self, request: Request) -> Response:
        raw = await request.body()
        self.deletes.append((request.path_params["name"], from_json(raw) if raw else {}))
        # Starlette keeps the body read above, so the server's own handler reads it again.
        return await self.kube._dispatch(request)

    def posts(self) -> list[str]:
        return [path for method, path, _ in self.kube.requests if method == "POST"]


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    c = Cluster()
    resources = [PODS, SERVICES, NODES, POD_GROUPS, DEPLOYMENTS]
    with serve(resources, extra_routes=c.routes) as server:
        c.server = server
        yield c


@pytest.fixture
async def api(cluster: Cluster) -> AsyncIterator[KubeApi]:
    async with KubeApi(cluster.kube.url) as client:
        yield client


def runtime_for(api: KubeApi, options: RenderOptions | None = None) -> KubernetesRuntime:
    return KubernetesRuntime(api, options or RenderOptions())


def launch_of(pod: Obj, env: dict[str, str] | None = None) -> PodLaunch:
    meta = pod["metadata"]
    return PodLaunch(
        uid=meta["uid"],
        namespace=meta["namespace"],
        name=meta["name"],
        command=tuple(pod["spec"]["command"]),
        env=dict(env if env is not None else PLATFORM_ENV),
        grace_seconds=float(pod["spec"].get("terminationGracePeriodSeconds", 30)),
        pod=pod,
    )


async def set_status(api: KubeApi, pod: Obj, status: Obj) -> None:
    meta = pod["metadata"]
    live = await api.get(PODS, meta["namespace"], meta["name"])
    await api.replace(PODS, {**live, "status": status}, subresource="status")


def kube_pod(uid: str, status: Obj) -> Obj:
    return {"metadata": {"labels": {POD_UID_LABEL: uid}}, "spec": {}, "status": status}


def terminated(code: int, reason: str, message: str = "") -> Obj:
    state = {"exitCode": code, "reason": reason, "startedAt": T0, "finishedAt": T1}
    if message:
        state["message"] = message
    return {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [{"name": "main", "state": {"terminated": state}}],
    }


# -- launch --------------------------------------------------------------------------------


def test_it_is_a_runtime_with_replica_sets() -> None:
    runtime: Runtime = KubernetesRuntime(KubeApi("http://127.0.0.1:1"))
    assert runtime.name == "kubernetes"
    assert isinstance(runtime, ReplicaSets)


async def test_launch_creates_the_rendered_pod(api: KubeApi, cluster: Cluster) -> None:
    pod = example("Job").image().pods()[0]
    runtime = runtime_for(api)
    await runtime.launch(launch_of(pod, {**PLATFORM_ENV, "DEMO_USER": "resolved-secret"}))
    live = await api.get(PODS, "quickstart", "primes-0")
    expected = render_pod(pod, RenderOptions(), platform_env=PLATFORM_ENV)
    assert live["spec"] == expected["spec"]
    assert live["metadata"]["labels"] == expected["metadata"]["labels"]
    assert live["metadata"]["ownerReferences"] == expected["metadata"]["ownerReferences"]
    assert "resolved-secret" not in str(live)
    assert (await runtime.observe(pod["metadata"]["uid"])).state is ProcessState.PENDING


async def test_launch_is_idempotent_even_after_a_restart(api: KubeApi, cluster: Cluster) -> None:
    pod = example("Job").image().pods()[0]
    await runtime_for(api).launch(launch_of(pod))
    await runtime_for(api).launch(launch_of(pod))  # a new runtime: nothing in memory
    runtime = runtime_for(api)
    await runtime.launch(launch_of(pod))
    await runtime.launch(launch_of(pod))
    assert cluster.posts() == ["/api/v1/namespaces/quickstart/pods"]


async def test_a_pod_of_the_same_name_still_there_holds_the_launch(
    api: KubeApi, cluster: Cluster
) -> None:
    old = example("Job").image().pods()[0]
    await runtime_for(api).launch(launch_of(old))
    new = copy.deepcopy(old)
    new["metadata"]["uid"] = "a-new-pod-of-the-same-name"
    with pytest.raises(LaunchError, match="still there"):
        await runtime_for(api).launch(launch_of(new))


async def test_a_gangs_headless_service_is_created_before_its_pods(
    api: KubeApi, cluster: Cluster
) -> None:
    runtime = runtime_for(api)
    for pod in example("TrainJob").image().pods():
        await runtime.launch(launch_of(pod))
    assert cluster.posts() == [
        "/api/v1/namespaces/quickstart/services",
        "/api/v1/namespaces/quickstart/pods",
        "/api/v1/namespaces/quickstart/services",  # rank 1: AlreadyExists, fine
        "/api/v1/namespaces/quickstart/pods",
    ]
    service = await api.get(SERVICES, "quickstart", "digits-0")
    assert service["spec"]["clusterIP"] == "None"


async def test_with_volcano_the_pod_group_comes_before_the_pods(
    api: KubeApi, cluster: Cluster
) -> None:
    runtime = runtime_for(api, RenderOptions(admission=Admission.VOLCANO))
    await runtime.launch(launch_of(example("TrainJob").image().pods()[0]))
    posts = cluster.posts()
    group_at = posts.index("/apis/scheduling.volcano.sh/v1beta1/namespaces/quickstart/podgroups")
    assert group_at < posts.index("/api/v1/namespaces/quickstart/pods")
    group = await api.get(POD_GROUPS, "quickstart", "digits-0")
    assert group["spec"]["minMember"] == 2


async def test_a_pod_the_cluster_cannot_run_is_refused_before_anything_is_created(
    api: KubeApi, cluster: Cluster
) -> None:
    pod = example("Job").pods()[0]  # no image
    with pytest.raises(RenderError, match=r"spec\.image"):
        await runtime_for(api).launch(launch_of(pod))
    assert cluster.posts() == []


async def test_flavor_labels_come_from_the_platforms_resolver(api: KubeApi) -> None:
    seen: list[str] = []

    async def flavors(pod: Obj) -> dict[str, str]:
        seen.append(pod["metadata"]["name"])
        return {"gpu.model": "h200"}

    runtime = KubernetesRuntime(api, RenderOptions(), flavor_labels=flavors)
    await runtime.launch(launch_of(example("Job").image().pods()[0]))
    live = await api.get(PODS, "quickstart", "primes-0")
    assert live["spec"]["nodeSelector"] == {"gpu.model": "h200"}
    assert seen == ["primes-0"]


# -- stop, remove, known pods ---------------------------------------------------------------


async def test_stop_deletes_with_the_grace_period(api: KubeApi, cluster: Cluster) -> None:
    pod = example("Job").image().pods()[0]
    runtime = runtime_for(api)
    await runtime.launch(launch_of(pod))
    await runtime.stop(pod["metadata"]["uid"], 12.5)
    assert cluster.deletes == [
        ("primes-0", {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 13})
    ]
    await runtime.stop(pod["metadata"]["uid"], 12.5)  # gone already: nothing to do
    assert len(cluster.deletes) == 1


async def test_remove_deletes_and_forgets(api: KubeApi, cluster: Cluster) -> None:
    pod = example("Job").image().pods()[0]
    uid = pod["metadata"]["uid"]
    runtime = runtime_for(api)
    await runtime.launch(launch_of(pod))
    await runtime.remove(uid)
    assert (await runtime.observe(uid)).state is ProcessState.NOT_FOUND
    await runtime.remove(uid)  # idempotent
    assert [name for name, _ in cluster.deletes] == ["primes-0"]


async def test_known_pods_are_the_ones_cnai_rendered(api: KubeApi, cluster: Cluster) -> None:
    pods = example("Job").image().pods()
    await runtime_for(api).launch(launch_of(pods[0]))
    await runtime_for(api).launch(launch_of(pods[1]))
    foreign = {"metadata": {"name": "someone-elses", "namespace": "quickstart"}, "spec": {}}
    await api.create(PODS, foreign)
    known = await runtime_for(api).known_pods()
    assert sorted(known) == sorted(p["metadata"]["uid"] for p in pods)


# -- observe -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param(
            {},
            Observation(ProcessState.PENDING),
            id="no-status-yet-is-pending",
        ),
        pytest.param(
            {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
                    }
                ],
            },
            Observation(
                ProcessState.PENDING,
                reason="Unschedulable",
                message="0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
            ),
            id="unschedulable-says-why",
        ),
        pytest.param(
            {
                "phase": "Running",
                "startTime": T0,
                "containerStatuses": [{"name": "main", "state": {"running": {"startedAt": T0}}}],
            },
            Observation(ProcessState.RUNNING, started_at=datetime(2026, 1, 1, tzinfo=UTC)),
            id="running",
        ),
        pytest.param(
            {
                "phase": "Running",
                "podIP": "10.244.1.7",
                "containerStatuses": [{"name": "main", "state": {"running": {"startedAt": T0}}}],
            },
            Observation(
                ProcessState.RUNNING,
                started_at=datetime(2026, 1, 1, tzinfo=UTC),
                address="10.244.1.7",
            ),
            id="running-is-reached-at-its-pod-ip",
        ),
        pytest.param(
            {
                "phase": "Pending",
                "podIP": "10.244.1.8",
                "containerStatuses": [
                    {"name": "main", "state": {"waiting": {"reason": "ContainerCreating"}}}
                ],
            },
            Observation(ProcessState.PENDING, reason="ContainerCreating", address="10.244.1.8"),
            id="pending-with-its-network-already-has-its-pod-ip",
        ),
        pytest.param(
            terminated(0, "Completed"),
            Observation(
                ProcessState.EXITED,
                exit_code=0,
                reason="Completed",
                started_at=datetime(2026, 1, 1, tzinfo=UTC),
                finished_at=datetime(2026, 1, 1, 0, 0, 7, tzinfo=UTC),
            ),
            id="exit-0-is-completed",
        ),
        pytest.param(
            terminated(3, "Error", "boom"),
            Observation(
                ProcessState.EXITED,
                exit_code=3,
                reason="Error",
                message="boom",
                started_at=datetime(2026, 1, 1, tzinfo=UTC),
                finished_at=datetime(2026, 1, 1, 0, 0, 7, tzinfo=UTC),
            ),
            id="exit-3-is-error-with-its-code",
        ),
        pytest.param(
            terminated(137, "OOMKilled"),
            Observation(
                ProcessState.EXITED,
                exit_code=137,
                reason="OOMKilled",
                started_at=datetime(2026, 1, 1, tzinfo=UTC),
                finished_at=datetime(2026, 1, 1, 0, 0, 7, tzinfo=UTC),
            ),
            id="oom-killed",
        ),
        pytest.param(
            {
                "phase": "Failed",
                "reason": "Evicted",
                "message": "The node was low on resource: memory.",
            },
            Observation(
                ProcessState.EXITED,
                reason="Evicted",
                message="The node was low on resource: memory.",
            ),
            id="evicted-without-a-container-state",
        ),
    ],
)
def test_a_pods_status_becomes_an_observation(status: Obj, expected: Observation) -> None:
    assert observation_of(kube_pod("u", status)) == expected


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName"])
def test_image_pull_errors_say_that_the_image_is_what_runs(reason: str) -> None:
    pod = kube_pod("u", {})
    pod["spec"] = {"containers": [{"name": "main", "image": "ghcr.io/me/trainer:typo"}]}
    waiting = {"reason": reason, "message": "manifest unknown"}
    pod["status"] = {
        "phase": "Pending",
        "containerStatuses": [{"name": "main", "state": {"waiting": waiting}}],
    }
    seen = observation_of(pod)
    assert (seen.state, seen.reason) == (ProcessState.PENDING, reason)
    assert "'ghcr.io/me/trainer:typo'" in seen.message
    assert "manifest unknown" in seen.message
    assert "the image is what runs" in seen.message


def test_the_pod_controller_shows_a_pending_pods_reason() -> None:
    seen = Observation(ProcessState.PENDING, reason="ImagePullBackOff", message="cannot pull")
    status = status_from(seen, {"phase": "Pending"}, "kubernetes")
    assert status == {
        "phase": "Pending",
        "reason": "ImagePullBackOff",
        "message": "cannot pull",
        "nodeName": "kubernetes",
    }


async def test_observe_reads_the_status_the_kubelet_wrote(api: KubeApi) -> None:
    pod = example("Job").image().pods()[0]
    uid = pod["metadata"]["uid"]
    runtime = runtime_for(api)
    await runtime.launch(launch_of(pod))
    await set_status(api, pod, terminated(137, "OOMKilled"))
    seen = await runtime_for(api).observe(uid)  # found by its label, not from memory
    assert (seen.state, seen.exit_code, seen.reason) == (ProcessState.EXITED, 137, "OOMKilled")
    assert (await runtime.observe("never-launched")).state is ProcessState.NOT_FOUND


# -- logs ----------------------------------------------------------------------------------


async def read(runtime: KubernetesRuntime, uid: str, **kwargs: Any) -> bytes:
    return b"".join([chunk async for chunk in runtime.logs(uid, **kwargs)])


async def test_logs_are_streamed_from_an_offset(api: KubeApi, cluster: Cluster) -> None:
    pod = example("Job").image().pods()[0]
    uid = pod["metadata"]["uid"]
    runtime = runtime_for(api)
    await runtime.launch(launch_of(pod))
    cluster.logs["primes-0"] = b"hello demo: 46 primes\n"
    assert await read(runtime, uid) == b"hello demo: 46 primes\n"
    assert await read(runtime, uid, follow=True, offset=6) == b"demo: 46 primes\n"
    assert cluster.log_params == [
        {"container": "main", "follow": "false"},
        {"container": "main", "follow": "true"},
    ]
    assert await read(runtime, "never-launched") == b""


async def test_logs_of_a_container_not_started_are_empty_without_follow(
    api: KubeApi, cluster: Cluster
) -> None:
    pod = example("Job").image().pods()[0]
    runtime = runtime_for(api)
    await runtime.launch(launch_of(pod))
    assert await read(runtime, pod["metadata"]["uid"]) == b""


async def test_following_the_logs_of_a_starting_container_waits_for_it(
    api: KubeApi, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "LOG_RETRY_S", 0.01)
    pod = example("Job").image().pods()[0]
    runtime = runtime_for(api)
    await runtime.launch(launch_of(pod))
    result: list[bytes] = []
    async with anyio.create_task_group() as tg:

        async def follow() -> None:
            result.append(await read(runtime, pod["metadata"]["uid"], follow=True))

        tg.start_soon(follow)
        with anyio.fail_after(10):
            while len(cluster.log_params) < 2:  # refused twice: still waiting to start
                await anyio.sleep(0.01)
        cluster.logs["primes-0"] = b"started\n"
    assert result == [b"started\n"]


# -- nodes ---------------------------------------------------------------------------------


def node(name: str, *, ready: bool = True, gpus: int = 0, **spec: Any) -> tuple[Obj, Obj]:
    resources = {"cpu": "16", "memory": "64Gi", "pods": "110"}
    allocatable = {"cpu": "15500m", "memory": "62Gi", "pods": "110"}
    if gpus:
        resources["nvidia.com/gpu"] = allocatable["nvidia.com/gpu"] = str(gpus)
    labels = {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": "z1"}
    if gpus:
        labels["nvidia.com/gpu.product"] = "NVIDIA-H200"
    obj = {"metadata": {"name": name, "labels": labels}, "spec": spec}
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    status = {"capacity": resources, "allocatable": allocatable, "conditions": [condition]}
    return obj, status


async def test_nodes_mirror_the_ready_nodes_and_node_sums_them(api: KubeApi) -> None:
    for obj, status in (
        node("gpu-1", gpus=8),
        node("cpu-1"),
        node("broken", ready=False, gpus=8),
        node("cordoned", unschedulable=True),
    ):
        created = await api.create(NODES, obj)
        await api.replace(NODES, {**created, "status": status}, subresource="status")
    runtime = runtime_for(api)
    nodes = {n.name: n for n in await runtime.nodes()}
    assert sorted(nodes) == ["cpu-1", "gpu-1"]
    gpu = nodes["gpu-1"]
    assert gpu.capacity == {"cpu": "16", "memory": "64Gi", "gpu": "8"}
    assert gpu.allocatable == {"cpu": "15500m", "memory": "62Gi", "gpu": "8"}
    assert gpu.labels["nvidia.com/gpu.product"] == "NVIDIA-H200"
    assert "gpu" not in nodes["cpu-1"].allocatable
    cluster = await runtime.node()
    assert cluster.name == "kubernetes"
    assert cluster.allocatable == {"cpu": "31", "memory": "124Gi", "gpu": "8"}
    assert cluster.labels == {"topology.kubernetes.io/zone": "z1"}  # what all of them share


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        pytest.param(
            {"cpu": "7900m", "memory": "32780004Ki", "nvidia.com/gpu": "1"},
            {"cpu": "7900m", "memory": "32780004Ki", "gpu": "1"},
            id="millicores-and-kibibytes",
        ),
        pytest.param(
            {"cpu": "128", "memory": "2Ti", "nvidia.com/gpu": "0"},
            {"cpu": "128", "memory": "2Ti"},
            id="no-gpus-no-gpu-entry",
        ),
        pytest.param(
            {"cpu": "4", "memory": "1e9"}, {"cpu": "4", "memory": "1000000000"}, id="exponent"
        ),
    ],
)
def test_node_quantities_are_read_as_cnai_reads_them(
    reported: dict[str, str], expected: dict[str, str]
) -> None:
    info = node_info(
        {"metadata": {"name": "n"}, "status": {"capacity": reported}}, "nvidia.com/gpu"
    )
    assert info.capacity == expected


# -- replica sets: an InferenceService revision's Deployment and Service ---------------------

REVISION = "digits-00001"
SERVING_NS = "quickstart"


def revision_spec(replicas: int) -> ReplicaSetSpec:
    """The quickstart service's first revision, as the InferenceService controller
    hands it over: one replica's cnai Pod as the template."""
    pod = example("InferenceService").image().pods()[0]
    return ReplicaSetSpec(SERVING_NS, REVISION, pod, replicas, dict(PLATFORM_ENV))


def writes(cluster: Cluster, plural: str) -> list[str]:
    return [
        method
        for method, path, _ in cluster.kube.requests
        if method in ("POST", "PUT") and path.split("/")[-1 if method == "POST" else -2] == plural
    ]


async def test_apply_creates_the_revisions_deployment_and_service(
    api: KubeApi, cluster: Cluster
) -> None:
    spec = revision_spec(1)
    await runtime_for(api).apply_replicas(spec)
    deployment = await api.get(DEPLOYMENTS, SERVING_NS, REVISION)
    service = await api.get(SERVICES, SERVING_NS, REVISION)
    validate(deployment)
    validate(service)
    expected, expected_service = render_revision(
        spec.pod, RenderOptions(), replicas=1, platform_env=PLATFORM_ENV
    )
    assert deployment["spec"] == expected["spec"]
    assert deployment["metadata"]["ownerReferences"] == expected["metadata"]["ownerReferences"]
    assert service["spec"] == expected_service["spec"]
    argv = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    listens = (argv[argv.index("--host") + 1], argv[argv.index("--port") + 1])
    assert listens == (ALL_INTERFACES, str(MODEL_SERVER_PORT))


async def test_reapplying_changes_the_replicas_only_and_an_equal_apply_writes_nothing(
    api: KubeApi, cluster: Cluster
) -> None:
    runtime = runtime_for(api)
    await runtime.apply_replicas(revision_spec(1))
    before = await api.get(DEPLOYMENTS, SERVING_NS, REVISION)
    await runtime.apply_replicas(revision_spec(3))
    await runtime_for(api).apply_replicas(revision_spec(3))  # a restart: nothing in memory
    after = await api.get(DEPLOYMENTS, SERVING_NS, REVISION)
    assert after["spec"]["replicas"] == 3
    assert {**after["spec"], "replicas": 1} == before["spec"]
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert writes(cluster, "deployments") == ["POST", "PUT"]
    assert writes(cluster, "services") == ["POST"]
    validate(after)


async def test_a_deployment_changed_meanwhile_is_updated_keeping_kubernetes_annotations(
    api: KubeApi, cluster: Cluster
) -> None:
    runtime = runtime_for(api)
    await runtime.apply_replicas(revision_spec(1))
    live = await api.get(DEPLOYMENTS, SERVING_NS, REVISION)
    live["spec"]["replicas"] = 5  # other writers: kubectl scale, Kubernetes' controller
    live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "1"
    await api.replace(DEPLOYMENTS, live)
    await runtime.apply_replicas(revision_spec(2))
    after = await api.get(DEPLOYMENTS, SERVING_NS, REVISION)
    assert after["spec"]["replicas"] == 2
    assert after["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"


def replica_pod(name: str, revision: str, status: Obj, **meta: Any) -> Obj:
    labels = {"cnai.io/inferenceservice-name": "digits", "cnai.io/revision-name": revision}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": SERVING_NS, "labels": labels, **meta},
        "spec": {"containers": [{"name": "main", "image": "x"}]},
        "status": status,
    }


async def test_endpoints_are_the_deployments_pods_at_their_ips(
    api: KubeApi, cluster: Cluster
) -> None:
    runtime = runtime_for(api)
    assert await runtime.replica_endpoints(SERVING_NS, REVISION) == []  # no Deployment yet
    await runtime.apply_replicas(revision_spec(3))
    kube = cluster.kube
    running = {"phase": "Running", "podIP": "10.244.1.7"}
    kube.create_object(PODS, replica_pod("digits-00001-a", REVISION, running))
    kube.create_object(PODS, replica_pod("digits-00001-b", REVISION, {"phase": "Pending"}))
    kube.create_object(PODS, replica_pod("digits-00001-c", REVISION, {"phase": "Failed"}))
    kube.create_object(PODS, replica_pod("digits-00002-a", "digits-00002", running))
    held = replica_pod("digits-00001-d", REVISION, running, finalizers=["test/hold"])
    kube.create_object(PODS, {**held, "status": {**running, "podIP": "10.244.1.9"}})
    await api.delete(PODS, SERVING_NS, "digits-00001-d")  # terminating, held by its finalizer
    assert await runtime.replica_endpoints(SERVING_NS, REVISION) == [
        ReplicaEndpoint("digits-00001-a", "10.244.1.7", 8080, running=True),
        ReplicaEndpoint("digits-00001-b", "", 8080),
        ReplicaEndpoint("digits-00001-d", "10.244.1.9", 8080, running=True, terminating=True),
    ]


async def test_delete_removes_the_deployment_and_the_service(
    api: KubeApi, cluster: Cluster
) -> None:
    runtime = runtime_for(api)
    await runtime.apply_replicas(revision_spec(1))
    await runtime.delete_replicas(SERVING_NS, REVISION)
    assert cluster.kube.list_objects(DEPLOYMENTS) == []
    assert cluster.kube.list_objects(SERVICES) == []
    await runtime.delete_replicas(SERVING_NS, REVISION)  # idempotent
    assert await runtime.replica_endpoints(SERVING_NS, REVISION) == []
