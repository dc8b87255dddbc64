"""cnai installed into a real Kubernetes cluster, running the quickstart there.

Runs only when ``CNAI_E2E_KUBECONFIG`` names the kubeconfig of a disposable cluster
(kind works: docs/kubernetes.md says exactly how) and ``CNAI_E2E_IMAGE`` an image the
cluster can run (default ``cnai:dev``, built from the repository's Dockerfile). No
cluster can run on the machines `make test` runs on, so there it is skipped, with
that reason in pytest's summary.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from harness import free_port

KUBECONFIG = os.environ.get("CNAI_E2E_KUBECONFIG", "")
IMAGE = os.environ.get("CNAI_E2E_IMAGE", "cnai:dev")
NAMESPACE = "cnai-e2e"
REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "examples" / "quickstart"

pytestmark = [
    pytest.mark.skipif(
        not KUBECONFIG,
        reason="CNAI_E2E_KUBECONFIG is not set, so there is no cluster to install cnai into "
        "(see docs/kubernetes.md: 'Running the end-to-end suite on kind')",
    ),
    pytest.mark.timeout(1200),
]


def _kubectl(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(
        ["kubectl", "--kubeconfig", KUBECONFIG, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"kubectl {' '.join(args)}: {done.stderr}"
    return done.stdout


def _cnai(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cnai", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"cnai {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@dataclass(frozen=True)
class Installed:
    """cnai in the cluster, reachable through a port-forward."""

    server: str
    token: str

    @property
    def env(self) -> dict[str, str]:
        return {"CNAI_SERVER": self.server, "CNAI_TOKEN": self.token}


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    assert shutil.which("kubectl"), "the end-to-end suite drives the cluster with kubectl"
    _cnai("k8s", "install", "--kubeconfig", KUBECONFIG, "-n", NAMESPACE, "--image", IMAGE)
    forward: subprocess.Popen[bytes] | None = None
    try:
        _kubectl("-n", NAMESPACE, "rollout", "status", "deploy/cnai", "--timeout=300s", timeout=330)
        port = free_port()
        forward = subprocess.Popen(
            [
                "kubectl",
                "--kubeconfig",
                KUBECONFIG,
                "-n",
                NAMESPACE,
                "port-forward",
                "svc/cnai",
                f"{port}:8470",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = f"http://127.0.0.1:{port}"
        _wait(lambda: _ready(server), 60, "cnai's /readyz through the port-forward")
        encoded = _kubectl(
            "-n", NAMESPACE, "get", "secret", "cnai-admin-token", "-o", "jsonpath={.data.token}"
        )
        yield Installed(server, base64.b64decode(encoded).decode())
    finally:
        if forward is not None:
            forward.terminate()
            forward.wait(timeout=10)
        subprocess.run(
            ["kubectl", "--kubeconfig", KUBECONFIG, "delete", "namespace", "quickstart"],
            capture_output=True,
            timeout=300,
        )
        manifests = _cnai("k8s", "manifests", "-n", NAMESPACE, "--image", IMAGE)
        subprocess.run(
            ["kubectl", "--kubeconfig", KUBECONFIG, "delete", "--ignore-not-found", "-f", "-"],
            input=manifests,
            text=True,
            capture_output=True,
            timeout=300,
        )


def _ready(server: str) -> bool:
    try:
        return httpx.get(f"{server}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def _phase(cluster: Installed, plural: str, name: str) -> str:
    out = _cnai("get", plural, name, "-n", "quickstart", "-o", "json", env=cluster.env)
    return str((json.loads(out).get("status") or {}).get("phase", ""))


def test_the_quickstart_runs_in_the_cluster(installed: Installed) -> None:
    files = ["00-namespace.yaml", "10-secret.yaml", "20-job.yaml", "30-trainjob.yaml"]
    for name in files:
        _cnai("apply", "-f", str(QUICKSTART / name), env=installed.env)
    _wait(lambda: _phase(installed, "jobs", "primes") in ("Succeeded", "Failed"), 300, "Job primes")
    assert _phase(installed, "jobs", "primes") == "Succeeded"
    # The Job's pods were real Pods, owned by cnai's Pod objects, with the Secret by
    # reference.
    pods = json.loads(
        _kubectl(
            "-n",
            "quickstart",
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/managed-by=cnai",
            "-o",
            "json",
        )
    )["items"]
    primes = [p for p in pods if p["metadata"]["name"].startswith("primes-")]
    assert primes, "no Kubernetes Pods were created for the Job"
    env = primes[0]["spec"]["containers"][0]["env"]
    demo = next(e for e in env if e["name"] == "DEMO_USER")
    assert demo["valueFrom"]["secretKeyRef"]["name"] == "demo-credentials"
    assert primes[0]["metadata"]["ownerReferences"][0]["apiVersion"] == "cnai.io/v1alpha1"
    logs = _cnai("logs", primes[0]["metadata"]["name"], "-n", "quickstart", env=installed.env)
    assert "46 primes below 200" in logs
    # The TrainJob: two DDP workers rendezvous through the gang's headless Service.
    _wait(
        lambda: _phase(installed, "trainjobs", "digits") in ("Succeeded", "Failed"),
        900,
        "TrainJob digits",
    )
    assert _phase(installed, "trainjobs", "digits") == "Succeeded"
    services = _kubectl("-n", "quickstart", "get", "services", "-o", "name")
    assert "service/digits-0" in services
    # kubectl prints cnai's own columns for cnai's kinds.
    table = _kubectl("-n", "quickstart", "get", "trainjobs.cnai.io")
    header = table.splitlines()[0].split()
    assert header[:4] == ["NAME", "STATUS", "NODES", "RESTARTS"]
    assert "Succeeded" in table
    runs = _cnai("runs", "list", "-n", "quickstart", env=installed.env)
    assert "primes" in runs
