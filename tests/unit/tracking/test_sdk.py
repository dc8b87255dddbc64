"""The tracking SDK (tracking.sdk) on a workload's path: where the client finds its
server, and that logging from a pod needs only the standard library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from cnai.core.config import ClientConfig, write_config
from cnai.tracking.sdk import TrackingClient

from .conftest import RecordingServer

HEAVY = {"httpx", "pydantic", "yaml", "rich"}
ENV = ("CNAI_SERVER", "CNAI_TOKEN", "CNAI_NAMESPACE", "CNAI_CONTEXT", "CNAI_RUN_ID")


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config file whose context points at file-host as file-ns; no CNAI_* set."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "config.yaml"
    write_config(path, ClientConfig("http://file-host:1", "file-token", "file-ns"))
    monkeypatch.setenv("CNAI_CONFIG", str(path))
    return path


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        pytest.param({}, ("http://file-host:1", "file-token", "file-ns"), id="all-from-the-file"),
        pytest.param(
            {"CNAI_SERVER": "http://env:2/", "CNAI_TOKEN": "t"},
            ("http://env:2", "t", "file-ns"),
            id="env-overrides-and-the-file-fills-in-the-namespace",
        ),
        pytest.param(
            {"CNAI_SERVER": "http://env:2", "CNAI_TOKEN": "t", "CNAI_NAMESPACE": "ml"},
            ("http://env:2", "t", "ml"),
            id="all-from-the-env-as-in-a-pod",
        ),
    ],
)
def test_the_client_finds_its_server_as_the_cli_does(
    config: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    expected: tuple[str, str, str],
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with TrackingClient() as client:
        found = (client.http.base_url, client.http.headers["Authorization"], client.namespace)
    assert found == (expected[0], f"Bearer {expected[1]}", expected[2])


def test_a_pod_with_all_three_variables_never_reads_the_config_file(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config.write_text("contexts: [unclosed")  # reading it would raise ConfigError
    monkeypatch.setenv("CNAI_SERVER", "http://env:2")
    monkeypatch.setenv("CNAI_TOKEN", "t")
    monkeypatch.setenv("CNAI_NAMESPACE", "ml")
    with TrackingClient() as client:
        assert client.namespace == "ml"


def test_a_workload_logs_metrics_with_the_standard_library_only(
    server: RecordingServer, tmp_path: Path
) -> None:
    broken = tmp_path / "config.yaml"
    broken.write_text("contexts: [unclosed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNAI_")}
    env.update(
        CNAI_SERVER=server.url,
        CNAI_TOKEN="tok",
        CNAI_NAMESPACE="ml",
        CNAI_RUN_ID="r1",
        CNAI_HOME=str(tmp_path),
        CNAI_CONFIG=str(broken),
    )
    script = textwrap.dedent(
        """
        import json, sys
        import cnai
        cnai.log_metrics({"loss": 0.5}, step=1)
        assert cnai.active_run().flush(timeout=30)
        print(json.dumps(sorted(sys.modules)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    loaded = {name.split(".")[0] for name in json.loads(done.stdout)}
    assert not loaded & HEAVY
    base = "/apis/tracking.cnai.io/v1/namespaces/ml/runs/r1"
    assert [(s.method, s.path) for s in server.seen] == [("GET", base), ("POST", f"{base}/log")]
    assert {s.headers["authorization"] for s in server.seen} == {"Bearer tok"}
    [batch] = server.bodies("/log")
    assert batch["metrics"]["loss"]["steps"] == [1]
    assert batch["metrics"]["loss"]["values"] == [0.5]
