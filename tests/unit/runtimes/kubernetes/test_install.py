"""`cnai k8s install`: the official client applies the install manifests by server-side
apply, over real HTTP, to the Kubernetes-API-shaped test server, waiting for each CRD to
be Established before the operator is created."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubeapi import KubeApiServer, serve
from typer.testing import CliRunner

from cnai.cli.main import app
from cnai.platform import platform_registry
from cnai.runtimes.kubernetes.api import ApiResource
from cnai.runtimes.kubernetes.install import InstallError, apply, load_client
from cnai.runtimes.kubernetes.manifests import InstallOptions, install_manifests

CRDS = ApiResource(
    "apiextensions.k8s.io",
    "v1",
    "customresourcedefinitions",
    "CustomResourceDefinition",
    False,
    True,
)
DEPLOYMENTS = ApiResource("apps", "v1", "deployments", "Deployment", True, True)
RESOURCES = [
    CRDS,
    DEPLOYMENTS,
    ApiResource("", "v1", "namespaces", "Namespace", False, True),
    ApiResource("", "v1", "serviceaccounts", "ServiceAccount", True),
    ApiResource("", "v1", "services", "Service", True, True),
    ApiResource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
    ApiResource(
        "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False
    ),
]
ESTABLISHED = {
    "conditions": [{"type": "Established", "status": "True", "reason": "InitialNamesAccepted"}]
}


def _kubeconfig(path: Path, url: str) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "t", "cluster": {"server": url}}],
                "users": [{"name": "t", "user": {"token": "t"}}],
                "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
                "current-context": "t",
            }
        )
    )
    return str(path)


class Establisher:
    """The API server's part: a CRD becomes Established a moment after it is created."""

    def __init__(self, kube: KubeApiServer, delay_s: float = 0.2) -> None:
        self.kube, self.delay_s = kube, delay_s
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(self.delay_s):
            for crd in self.kube.list_objects(CRDS):
                if not crd.get("status"):
                    self.kube.write_status(CRDS, None, crd["metadata"]["name"], ESTABLISHED)


@pytest.fixture
def kube() -> Iterator[KubeApiServer]:
    with serve(RESOURCES) as server:
        yield server


@pytest.fixture
def establisher(kube: KubeApiServer) -> Iterator[Establisher]:
    e = Establisher(kube)
    e.thread.start()
    yield e
    e.stop.set()
    e.thread.join(timeout=5)


def _objects() -> list[Any]:
    return install_manifests(platform_registry(), InstallOptions(namespace="ml-ops"))


def test_install_applies_everything_and_creates_the_operator_only_once_crds_are_served(
    kube: KubeApiServer, establisher: Establisher, tmp_path: Path
) -> None:
    objects = _objects()
    client = load_client(_kubeconfig(tmp_path / "kubeconfig", kube.url))
    with client:
        applied = apply(client, objects, establish_timeout_s=20)
    assert [a.name for a in applied] == [o["metadata"]["name"] for o in objects]
    assert str(applied[0]) == "namespace/ml-ops"
    assert "customresourcedefinition.apiextensions.k8s.io/trainjobs.cnai.io" in map(str, applied)
    crds = {c["metadata"]["name"] for c in kube.list_objects(CRDS)}
    assert crds == {
        o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"
    }
    (deployment,) = kube.list_objects(DEPLOYMENTS, "ml-ops")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "cnai"
    # Every write was a server-side apply by cnai, forced; the Deployment came only after
    # the install had read every CRD back, and it asked more than once (it waited).
    patches = [(path, query) for method, path, query in kube.requests if method == "PATCH"]
    assert all(q.get("fieldManager") == "cnai" and q.get("force") == "true" for _, q in patches)
    order = [(m, p) for m, p, _ in kube.requests]
    deploy_at = order.index(("PATCH", "/apis/apps/v1/namespaces/ml-ops/deployments/cnai"))
    crd_reads = [
        i for i, (m, p) in enumerate(order) if m == "GET" and "customresourcedefinitions" in p
    ]
    assert len(crd_reads) > len(crds)
    assert max(crd_reads) < deploy_at


def test_install_again_is_an_upgrade_that_changes_nothing_unchanged(
    kube: KubeApiServer, establisher: Establisher, tmp_path: Path
) -> None:
    client = load_client(_kubeconfig(tmp_path / "kubeconfig", kube.url))
    with client:
        apply(client, _objects(), establish_timeout_s=20)
        before = {
            c["metadata"]["name"]: c["metadata"]["resourceVersion"] for c in kube.list_objects(CRDS)
        }
        apply(client, _objects(), establish_timeout_s=20)
        after = {
            c["metadata"]["name"]: c["metadata"]["resourceVersion"] for c in kube.list_objects(CRDS)
        }
        assert after == before
        newer = install_manifests(
            platform_registry(), InstallOptions(namespace="ml-ops", replicas=3)
        )
        apply(client, newer, establish_timeout_s=20)
    (deployment,) = kube.list_objects(DEPLOYMENTS, "ml-ops")
    assert deployment["spec"]["replicas"] == 3


def test_dry_run_stores_nothing(kube: KubeApiServer, tmp_path: Path) -> None:
    client = load_client(_kubeconfig(tmp_path / "kubeconfig", kube.url))
    with client:
        applied = apply(client, _objects(), dry_run=True)
    assert len(applied) == len(_objects())
    assert kube.list_objects(CRDS) == []
    assert all(q.get("dryRun") == "All" for m, _, q in kube.requests if m == "PATCH")


def test_a_crd_that_is_never_served_stops_the_install_with_what_to_check(
    kube: KubeApiServer, tmp_path: Path
) -> None:
    client = load_client(_kubeconfig(tmp_path / "kubeconfig", kube.url))
    with (
        client,
        pytest.raises(InstallError, match=r"was not Established within 1s.*kubectl describe crd"),
    ):
        apply(client, _objects(), establish_timeout_s=1)
    assert kube.list_objects(DEPLOYMENTS, "ml-ops") == []  # the operator never started


def test_cli_install_prints_each_object_and_names_an_unreachable_cluster(
    kube: KubeApiServer, establisher: Establisher, tmp_path: Path
) -> None:
    config = _kubeconfig(tmp_path / "kubeconfig", kube.url)
    result = CliRunner().invoke(app, ["k8s", "install", "--kubeconfig", config])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "namespace/cnai-system applied"
    assert "deployment.apps/cnai applied" in lines
    assert "port-forward svc/cnai 8470" in result.output
    gone = _kubeconfig(tmp_path / "gone", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["k8s", "install", "--kubeconfig", gone])
    assert result.exit_code == 1
    assert "cannot reach the Kubernetes API at http://127.0.0.1:9" in result.output
    result = CliRunner().invoke(app, ["k8s", "install", "--kubeconfig", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "cannot load kubeconfig" in result.output
