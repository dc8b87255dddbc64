"""The quickstart as a user runs it: `cnai up --quickstart`, then the CLI, then Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import free_port

from cnai.core.config import load_config

REPO = Path(__file__).resolve().parents[2]


def _cnai(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnai", *args],
        env={**os.environ, "CNAI_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} not printed; output was:\n{''.join(seen)}")


@pytest.mark.timeout(300)  # the quickstart trains a model on two workers
def test_up_with_quickstart_serves_until_interrupted(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnai", "up", "--port", str(port), "--quickstart"],
        env={**os.environ, "CNAI_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    try:
        output = _wait_for_line(proc, "quickstart succeeded", timeout=300)
        assert "namespace/quickstart created" in output
        assert "secret/demo-credentials" in output
        # Still serving after the summary: the CLI reaches it through the written config.
        listed = _cnai(home, "get", "secrets", "-n", "quickstart")
        assert listed.returncode == 0, listed.stderr
        assert "demo-credentials" in listed.stdout
        assert "change-me" not in listed.stdout  # the secret's value stays hidden
        assert "400 points acknowledged" in output
        runs = _cnai(home, "runs", "list", "-n", "quickstart")
        assert runs.returncode == 0, runs.stderr
        assert "primes-fit" in runs.stdout
        # The Job's own run, which its pods logged to with no configuration.
        job_run = next(line.split() for line in runs.stdout.splitlines() if " primes " in line)
        assert job_run[2] == "FINISHED"
        assert "primes_below_200=46" in job_run
        model = _cnai(home, "models", "show", "primes", "-n", "quickstart")
        assert model.returncode == 0, model.stderr
        assert model.stdout.splitlines()[-1].split()[:2] == ["1", "champion"]
        # The TrainJob: two DDP workers trained digits and registered the model.
        assert "trainjob/digits: Succeeded on 2 nodes" in output
        trained = _cnai(home, "models", "show", "digits", "-n", "quickstart")
        assert trained.returncode == 0, trained.stderr
        assert trained.stdout.splitlines()[-1].split()[:2] == ["1", "champion"]
        # The InferenceService served the registered digits model through the gateway.
        served = next(line for line in output.splitlines() if "inferenceservice/digits:" in line)
        predicted, truth = (
            [int(d) for d in part.split("]")[0].split(",")] for part in served.split("[")[1:3]
        )
        assert len(predicted) == 5
        assert sum(p == t for p, t in zip(predicted, truth, strict=True)) >= 4
        isvc = _cnai(home, "get", "inferenceservices", "-n", "quickstart")
        assert isvc.returncode == 0, isvc.stderr
        assert "digits" in isvc.stdout
        assert (home / "config.yaml").stat().st_mode & 0o777 == 0o600
        _every_object_fits_the_crds(home)
    finally:
        # Pods outlive the platform (a restart adopts them): stop the model server first.
        _cnai(home, "delete", "inferenceservice", "digits", "-n", "quickstart")
        deadline = time.monotonic() + 30
        while (
            time.monotonic() < deadline
            and "digits-000" in _cnai(home, "get", "pods", "-n", "quickstart").stdout
        ):
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        assert proc.stdout is not None
        proc.stdout.close()
    assert code == 0
    assert not (home / "platform.json").exists()


def _every_object_fits_the_crds(home: Path) -> None:
    """What the controllers wrote (status included) is what a cluster would accept."""
    import httpx
    from crdcheck import object_errors

    from cnai.platform import platform_registry
    from cnai.runtimes.kubernetes.crds import crd_for, crd_kinds

    cfg = load_config(home / "config.yaml")
    headers = {"Authorization": f"Bearer {cfg.token}"}
    checked = set()
    with httpx.Client(base_url=cfg.server, headers=headers, timeout=10) as http:
        for info in crd_kinds(platform_registry()):
            crd = crd_for(info)
            items = http.get(f"/apis/cnai.io/v1alpha1/{info.plural}").raise_for_status()
            for obj in items.json()["items"]:
                assert object_errors(crd, obj) == [], (info.kind, obj["metadata"]["name"])
                checked.add(info.kind)
    assert {"Job", "TrainJob", "InferenceService", "Pod", "Workload", "Node"} <= checked


def test_detach_then_down(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    started = _cnai(home, "up", "--detach", "--port", str(port))
    assert started.returncode == 0, started.stderr
    assert f"127.0.0.1:{port}" in started.stderr
    # Where the dashboard is and where its token is, but never the token itself.
    assert f"dashboard: http://127.0.0.1:{port}/ " in started.stderr
    token = load_config(home / "config.yaml").token
    assert token
    assert str(home / "config.yaml") in started.stderr
    assert token not in started.stderr
    try:
        again = _cnai(home, "up", "--detach", "--port", str(port))
        assert again.returncode == 1
        assert "already running" in again.stderr
        version = _cnai(home, "version")
        assert "Server Version: 0.1.0" in version.stdout
    finally:
        stopped = _cnai(home, "down")
    assert stopped.returncode == 0
    assert "stopped" in stopped.stderr
    assert not (home / "platform.json").exists()


def test_state_survives_a_restart(tmp_path: Path) -> None:
    home = tmp_path / "home"
    port = free_port()
    assert _cnai(home, "up", "--detach", "--port", str(port)).returncode == 0
    try:
        created = _cnai(home, "create", "namespace", "kept")
        assert created.returncode == 0, created.stderr
    finally:
        assert _cnai(home, "down").returncode == 0
    assert _cnai(home, "up", "--detach", "--port", str(port)).returncode == 0
    try:
        got = _cnai(home, "get", "namespace", "kept")
        assert got.returncode == 0, got.stderr
        assert "kept" in got.stdout
    finally:
        _cnai(home, "down")


@pytest.mark.parametrize("bad_port", ["0x", "-1"], ids=["port-not-a-number", "negative-port"])
def test_bad_port_is_a_usage_error(tmp_path: Path, bad_port: str) -> None:
    result = _cnai(tmp_path / "home", "up", "--port", bad_port)
    assert result.returncode != 0
    assert "port" in (result.stderr + result.stdout).lower()
