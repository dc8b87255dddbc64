"""Operator mode end to end: `cnai up --store kubernetes --runtime kubernetes`, with the
Kubernetes-API-shaped test server (kubeapi.py) standing in for the cluster.

The test plays the cluster's other parts: the Namespaces and the Node a cluster starts
with, and the kubelet, which moves each Kubernetes Pod to Succeeded. Everything else is
cnai's: its objects as custom resources, the admin token in a Secret, the quickstart Job
rendered to Kubernetes Pods, and the controllers on the one replica that holds the Lease.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib  # type: ignore[import-untyped]
import numpy as np
import pytest
import yaml
from harness import RunningPlatform, free_port, start_platform, wait_until
from kubeapi import KubeApiServer, serve

from cnai.platform import platform_registry
from cnai.runtimes.kubernetes.api import ApiResource
from cnai.runtimes.kubernetes.leader import LEASES
from cnai.runtimes.kubernetes.operator import ADMIN_SECRET, LEASE_NAME, TOKEN_RESOURCE
from cnai.runtimes.kubernetes.render import ALL_INTERFACES, MODEL_SERVER_PORT
from cnai.runtimes.kubernetes.runtime import DEPLOYMENTS, NODES, PODS, SERVICES
from cnai.runtimes.kubernetes.store import resources_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

Obj = dict[str, Any]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "quickstart"
QUICKSTART = ("00-namespace.yaml", "10-secret.yaml", "20-job.yaml")
OPERATOR_NS = "cnai-system"
IMAGE = "cnai:test"
CNAI = resources_for(platform_registry())
# Everything operator mode reads or writes: cnai's kinds (Namespace, Secret and Event as
# core/v1 objects), the token records, and the cluster's own Pods, Services, Nodes, Leases
# and Deployments (an InferenceService revision's).
RESOURCES: list[ApiResource] = [
    *CNAI.values(),
    TOKEN_RESOURCE,
    PODS,
    SERVICES,
    NODES,
    LEASES,
    DEPLOYMENTS,
]
SECRETS, CNAI_PODS, CNAI_NODES = CNAI["secrets"], CNAI["pods"], CNAI["nodes"]
JOBS, WORKLOADS = CNAI["jobs"], CNAI["workloads"]
LEASE_DURATION_S = 15.0  # leader.LEASE_DURATION_S, which the replicas run with
# uvicorn's timeout_graceful_shutdown in cnai.platform: a stop that waited on an open
# stream takes at least this long.
GRACEFUL_SHUTDOWN_S = 5.0


def kube_node(name: str, cpu: str, memory: str) -> Obj:
    """A Ready Kubernetes Node, as its kubelet reports it."""
    resources = {"cpu": cpu, "memory": memory, "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}],
        },
    }


def kube_namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def kubeconfig_for(url: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "test", "cluster": {"server": url}}],
            "users": [{"name": "test", "user": {"token": "test-bearer-token"}}],
            "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
            "current-context": "test",
        }
    )


@dataclass
class Cluster:
    """The test server, and a kubeconfig that reaches it."""

    kube: KubeApiServer
    kubeconfig: Path

    def replica(self, home: Path, pod_name: str, *extra: str) -> RunningPlatform:
        """A cnai replica as the operator Deployment runs one (POD_NAME, POD_NAMESPACE)."""
        return start_platform(
            home,
            free_port(),
            extra_args=[
                "--store=kubernetes",
                "--runtime=kubernetes",
                f"--kubeconfig={self.kubeconfig}",
                *extra,
            ],
            env={"POD_NAMESPACE": OPERATOR_NS, "POD_NAME": pod_name, "CNAI_DEFAULT_IMAGE": IMAGE},
        )

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        """A Secret's value; "" while it (or the key) is not there."""
        secret = self.kube.get_object(SECRETS, namespace, name) or {}
        return base64.b64decode((secret.get("data") or {}).get(key, "")).decode()

    def admin_token(self) -> str:
        return self.secret_value(OPERATOR_NS, ADMIN_SECRET, "token")

    def lease(self) -> Obj:
        lease = self.kube.get_object(LEASES, OPERATOR_NS, LEASE_NAME)
        assert lease is not None, f"no Lease {OPERATOR_NS}/{LEASE_NAME}"
        return lease

    def lease_holder(self) -> str:
        if self.kube.get_object(LEASES, OPERATOR_NS, LEASE_NAME) is None:
            return ""
        return str(self.lease()["spec"].get("holderIdentity") or "")

    def pods(self) -> list[Obj]:
        """The Kubernetes Pods in the quickstart namespace."""
        return self.kube.list_objects(PODS, "quickstart")

    def admitted(self) -> bool:
        workloads = self.kube.list_objects(WORKLOADS, "quickstart")
        conditions = [c for w in workloads for c in (w.get("status") or {}).get("conditions") or ()]
        return any(c["type"] == "Admitted" and c["status"] == "True" for c in conditions)

    def succeed(self, pod: Obj) -> None:
        """Be the kubelet: the container ``main`` exited 0."""
        terminated = {
            "exitCode": 0,
            "reason": "Completed",
            "startedAt": "2026-01-01T00:00:00Z",
            "finishedAt": "2026-01-01T00:00:01Z",
        }
        status = {
            "phase": "Succeeded",
            "containerStatuses": [
                {
                    "name": "main",
                    "image": pod["spec"]["containers"][0]["image"],
                    "ready": False,
                    "restartCount": 0,
                    "state": {"terminated": terminated},
                }
            ],
        }
        meta = pod["metadata"]
        self.kube.write_status(PODS, meta["namespace"], meta["name"], status)


@contextmanager
def start_cluster(tmp_path: Path, resources: Sequence[ApiResource]) -> Iterator[Cluster]:
    """A cluster as it is before the operator Deployment starts: the namespaces
    ``default`` and ``cnai-system``, and one Node with 8 CPUs and 32Gi."""
    with serve(resources, status_on_delete={"secrets", "events"}) as kube:
        for name in ("default", OPERATOR_NS):
            kube.create_object(CNAI["namespaces"], kube_namespace(name))
        if NODES in resources:
            kube.create_object(NODES, kube_node("node-1", cpu="8", memory="32Gi"))
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(kubeconfig_for(kube.url))
        yield Cluster(kube, kubeconfig)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with start_cluster(tmp_path, RESOURCES) as running:
        yield running


def cli_env(replica: RunningPlatform, token: str) -> dict[str, str]:
    # A home of its own: the CLI reads nothing of the replica's config.
    home = str(replica.home / "cli")
    return {**os.environ, "CNAI_SERVER": replica.url, "CNAI_TOKEN": token, "CNAI_HOME": home}


def cnai(replica: RunningPlatform, token: str, *args: str) -> str:
    """Run the `cnai` CLI against ``replica`` with ``token``; return what it printed."""
    ran = subprocess.run(
        [sys.executable, "-m", "cnai", *args],
        env=cli_env(replica, token),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert ran.returncode == 0, f"cnai {' '.join(args)}: {ran.stdout}{ran.stderr}"
    return ran.stdout


def apply(replica: RunningPlatform, token: str, *files: str) -> None:
    for name in files:
        cnai(replica, token, "apply", "-f", str(EXAMPLES / name))


def job_phase(replica: RunningPlatform, token: str) -> str:
    job = json.loads(cnai(replica, token, "get", "job", "primes", "-n", "quickstart", "-o", "json"))
    return str((job.get("status") or {}).get("phase") or "")


def interrupt(replica: RunningPlatform) -> tuple[int, float]:
    """Stop a replica with SIGINT; its exit code, and how long it took."""
    started = time.monotonic()
    replica.proc.send_signal(signal.SIGINT)
    code = replica.proc.wait(timeout=30)
    return code, time.monotonic() - started


def kill_all(*procs: RunningPlatform | subprocess.Popen[bytes] | None) -> None:
    for proc in procs:
        popen = proc.proc if isinstance(proc, RunningPlatform) else proc
        if popen is not None and popen.poll() is None:
            popen.kill()
            popen.wait(timeout=10)


def log_of(replica: RunningPlatform) -> str:
    return replica.log_path.read_text(errors="replace")


def env_of(pod: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in pod["spec"]["containers"][0].get("env") or ()}


def assert_rendered(cluster: Cluster, pod: Obj) -> None:
    """The Kubernetes Pod of a quickstart pod: the default image, the Secret as a
    reference, cnai's Service as CNAI_SERVER, owned by the cnai Pod."""
    name = pod["metadata"]["name"]
    cnai_pod = cluster.kube.get_object(CNAI_PODS, "quickstart", name)
    assert cnai_pod is not None, f"no cnai Pod {name}"
    assert pod["spec"]["containers"][0]["image"] == IMAGE
    env = env_of(pod)
    ref = {"secretKeyRef": {"name": "demo-credentials", "key": "username"}}
    assert env["DEMO_USER"] == {"name": "DEMO_USER", "valueFrom": ref}
    rendered = json.dumps(pod)
    assert '"demo"' not in rendered, "a Secret's value in a rendered Pod"
    assert "change-me" not in rendered, "a Secret's value in a rendered Pod"
    assert env["CNAI_SERVER"]["value"] == f"http://cnai.{OPERATOR_NS}.svc:8470"
    assert pod["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "Pod",
            "name": name,
            "uid": cnai_pod["metadata"]["uid"],
            "controller": True,
        }
    ]


def test_quickstart_job_runs_as_kubernetes_pods_on_the_leader(
    cluster: Cluster, tmp_path: Path
) -> None:
    kube = cluster.kube
    replica = watcher = None
    try:
        replica = cluster.replica(tmp_path / "cnai-0", "cnai-0")
        token = cluster.admin_token()
        apply(replica, token, *QUICKSTART)

        # 1. The Job is a custom resource; the leader's controllers admit its Workload
        #    and render its two pods as Kubernetes Pods.
        assert kube.get_object(JOBS, "quickstart", "primes") is not None
        wait_until(cluster.admitted, timeout=20, what="the Job's Workload admitted")
        wait_until(lambda: len(cluster.pods()) == 2, timeout=20, what="two Kubernetes Pods")
        for pod in cluster.pods():
            assert_rendered(cluster, pod)
        assert cluster.lease_holder() == "cnai-0"
        cnai_node = kube.get_object(CNAI_NODES, None, "kubernetes")
        assert cnai_node is not None
        assert cnai_node["status"]["allocatable"] == {"cpu": "8", "memory": "32Gi"}

        # 2. The kubelet's part: both containers exit 0, and the Job succeeds.
        for pod in cluster.pods():
            cluster.succeed(pod)
        wait_until(
            lambda: job_phase(replica, token) == "Succeeded", timeout=20, what="Job Succeeded"
        )
        header, row = cnai(replica, token, "get", "jobs", "-n", "quickstart").splitlines()
        assert header.split()[:3] == ["NAME", "STATUS", "COMPLETIONS"]
        assert row.split()[:3] == ["primes", "Succeeded", "2/2"]

        # 3. Deleting the namespace: cnai's finalizer deletes its objects, the pods'
        #    finalizer their Kubernetes Pods (objects being deleted carry Kubernetes'
        #    deletionGracePeriodSeconds, which cnai's metadata must not trip over).
        assert "quickstart" in cnai(replica, token, "delete", "namespace", "quickstart")
        wait_until(
            lambda: kube.get_object(CNAI["namespaces"], None, "quickstart") is None,
            timeout=20,
            what="namespace quickstart gone",
        )
        assert cluster.pods() == []

        # 4. A clean stop, with a client's watch open: the watch ends, the replica exits
        #    0 without waiting out its shutdown timeout, and releases the Lease.
        out = tmp_path / "watch.out"
        with out.open("wb") as sink:
            watcher = subprocess.Popen(
                [sys.executable, "-m", "cnai", "get", "namespaces", "--watch"],
                env=cli_env(replica, token),
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        wait_until(lambda: OPERATOR_NS in out.read_text(), timeout=20, what="the watch")
        code, took = interrupt(replica)
        assert code == 0, log_of(replica)
        assert took < GRACEFUL_SHUTDOWN_S, f"stopping took {took:.1f}s:\n{log_of(replica)}"
        assert watcher.wait(timeout=10) == 0, out.read_text()
        assert cluster.lease_holder() == ""
    finally:
        kill_all(replica, watcher)


def test_standby_serves_the_api_and_takes_over_the_controllers(
    cluster: Cluster, tmp_path: Path
) -> None:
    leader = standby = None
    try:
        leader = cluster.replica(tmp_path / "cnai-0", "cnai-0")
        wait_until(lambda: cluster.lease_holder() == "cnai-0", timeout=10, what="cnai-0 leads")
        standby = cluster.replica(tmp_path / "cnai-1", "cnai-1")
        token = cluster.admin_token()

        # 1. The standby serves the API with the same admin token; what is applied
        #    through it, the leader's controllers act on.
        apply(standby, token, *QUICKSTART)
        assert "quickstart" in cnai(leader, token, "get", "namespaces", "-o", "name")
        wait_until(lambda: len(cluster.pods()) == 2, timeout=20, what="two Kubernetes Pods")
        assert cluster.lease_holder() == "cnai-0"

        # 2. The token the leader issued the job's pods works on the standby too (the
        #    pods reach whichever replica cnai's Service picks).
        def pod_token() -> str:
            return cluster.secret_value("quickstart", "primes-cnai-token", "token")

        wait_until(lambda: bool(pod_token()), timeout=20, what="the job's token Secret")
        assert "primes" in cnai(standby, pod_token(), "get", "jobs", "-n", "quickstart")

        # 3. The leader stops and releases the Lease; the standby takes it and runs the
        #    controllers, which finish the job the leader started.
        code, _ = interrupt(leader)
        assert code == 0, log_of(leader)
        wait_until(
            lambda: cluster.lease_holder() == "cnai-1",
            timeout=LEASE_DURATION_S,
            what="cnai-1 takes the Lease",
        )
        for pod in cluster.pods():
            cluster.succeed(pod)
        wait_until(
            lambda: job_phase(standby, token) == "Succeeded", timeout=20, what="Job Succeeded"
        )
        code, _ = interrupt(standby)
        assert code == 0, log_of(standby)
        assert cluster.lease_holder() == ""
    finally:
        kill_all(leader, standby)


def take_lease(cluster: Cluster) -> None:
    """Another candidate writes itself into the Lease (as after a network partition)."""
    wait_until(lambda: cluster.lease_holder() == "cnai-0", timeout=10, what="cnai-0 leads")
    url = cluster.kube.url + LEASES.path(OPERATOR_NS, LEASE_NAME)

    def taken() -> bool:  # at the version read: a renewal in between is a 409, tried again
        lease = cluster.lease()
        lease["spec"]["holderIdentity"] = "intruder"
        return httpx.put(url, json=lease, timeout=5).status_code == httpx.codes.OK

    wait_until(taken, timeout=10, what="the Lease taken")


def nothing(cluster: Cluster) -> None:
    del cluster


@pytest.mark.parametrize(
    ("resources", "act", "reason", "holder"),
    [
        pytest.param(
            RESOURCES,
            take_lease,
            "this replica lost the controllers' Lease",
            "intruder",
            id="another-candidate-takes-the-lease",
        ),
        pytest.param(
            [r for r in RESOURCES if r != NODES],
            nothing,
            "this replica's controllers failed",
            "",  # released, for a standby to take at once
            id="controllers-fail-to-start-as-the-nodes-cannot-be-listed",
        ),
    ],
)
def test_a_leader_that_cannot_lead_exits_with_the_reason(
    tmp_path: Path,
    resources: list[ApiResource],
    act: Callable[[Cluster], None],
    reason: str,
    holder: str,
) -> None:
    with start_cluster(tmp_path, resources) as cluster:
        replica = None
        try:
            replica = cluster.replica(tmp_path / "cnai-0", "cnai-0")
            act(cluster)
            assert replica.proc.wait(timeout=20) == 1, log_of(replica)
            assert reason in log_of(replica)
            assert cluster.lease_holder() == holder
        finally:
            kill_all(replica)


def test_kueue_admits_instead_of_cnais_quota(cluster: Cluster, tmp_path: Path) -> None:
    """--admission kueue: cnai hands each Workload on at once, even one far beyond the
    cluster's capacity, and its pods carry Kueue's queue label for Kueue to gate."""
    replica = None
    job = yaml.safe_load((EXAMPLES / "20-job.yaml").read_text())
    job["spec"]["template"]["spec"]["resources"]["requests"]["cpu"] = "6"  # 2 x 6 > 8 cpu
    big = tmp_path / "big-job.yaml"
    big.write_text(yaml.safe_dump(job))
    try:
        replica = cluster.replica(
            tmp_path / "cnai-0", "cnai-0", "--admission=kueue", "--queue=team-a"
        )
        token = cluster.admin_token()
        apply(replica, token, *QUICKSTART[:2])
        cnai(replica, token, "apply", "-f", str(big))
        wait_until(cluster.admitted, timeout=20, what="the Workload handed to Kueue")
        wait_until(lambda: len(cluster.pods()) == 2, timeout=20, what="two Kubernetes Pods")
        for pod in cluster.pods():
            assert pod["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "team-a"
            assert "nodeName" not in pod["spec"]  # Kueue's flavors, then the scheduler, place it
            requests = pod["spec"]["containers"][0]["resources"]["requests"]
            assert requests["cpu"] == "6"
        (workload,) = cluster.kube.list_objects(WORKLOADS, "quickstart")
        assert workload["status"]["admission"]["clusterQueue"] == "kueue"
    finally:
        kill_all(replica)


def test_an_inferenceservice_revision_is_a_deployment_scaled_by_cnai(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Its replicas are no cnai Pods: one Deployment and Service per revision, whose
    count is what the Workload was admitted for, and which go with the service."""
    from sklearn.dummy import DummyClassifier

    model = tmp_path / "iris.joblib"  # read by the operator here (it checks the path)
    joblib.dump(DummyClassifier().fit(np.zeros((2, 4)), [0, 1]), model)
    manifest = tmp_path / "isvc.yaml"

    def apply_service(**spec: int) -> None:
        body = {
            "apiVersion": "cnai.io/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": "iris", "namespace": "default"},
            "spec": {"predictor": {"model": str(model)}, **spec},
        }
        manifest.write_text(yaml.safe_dump(body))
        cnai(replica, token, "apply", "-f", str(manifest))

    def replicas() -> int | None:
        deployment = cluster.kube.get_object(DEPLOYMENTS, "default", "iris-00001")
        return None if deployment is None else int(deployment["spec"]["replicas"])

    replica = None
    try:
        replica = cluster.replica(tmp_path / "cnai-0", "cnai-0")
        token = cluster.admin_token()

        # 1. minReplicas 1: once its Workload is admitted, a Deployment of one and a
        #    Service, running the model server on the model's path.
        apply_service(minReplicas=1, maxReplicas=3)
        wait_until(lambda: replicas() == 1, timeout=30, what="a Deployment of 1")
        deployment = cluster.kube.get_object(DEPLOYMENTS, "default", "iris-00001")
        assert deployment is not None
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        argv = container["command"]
        assert argv[:3] == ["python", "-m", "cnai.serving.server"]
        assert argv[argv.index("--model") + 1] == str(model)
        listens = (argv[argv.index("--host") + 1], argv[argv.index("--port") + 1])
        assert listens == (ALL_INTERFACES, str(MODEL_SERVER_PORT))
        assert container["image"] == IMAGE
        assert cluster.kube.get_object(SERVICES, "default", "iris-00001") is not None
        assert cluster.kube.list_objects(CNAI_PODS, "default") == []  # no cnai Pods

        # 2. minReplicas 2: the autoscaler wants two, the queue admits two.
        apply_service(minReplicas=2, maxReplicas=3)
        wait_until(lambda: replicas() == 2, timeout=30, what="a Deployment of 2")

        # 3. The service goes, and its Deployment and Service with it.
        cnai(replica, token, "delete", "inferenceservice", "iris", "-n", "default")

        def gone() -> bool:
            service = cluster.kube.get_object(SERVICES, "default", "iris-00001")
            return replicas() is None and service is None

        wait_until(gone, timeout=30, what="the Deployment and Service gone")
    finally:
        kill_all(replica)
