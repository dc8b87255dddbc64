"""Run artifacts on a real platform: cnai's SDK and API, and the MLflow client's proxy."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
import pytest
from harness import RunningPlatform
from mlflow import MlflowClient

import cnai
from cnai.tracking.sdk import TrackingClient, TrackingError

BASE = "/apis/tracking.cnai.io/v1/namespaces"


@pytest.fixture
def tracking(platform: RunningPlatform, namespace: str) -> Iterator[TrackingClient]:
    client = TrackingClient(platform.url, platform.admin_token(), namespace)
    yield client
    client.close()


def test_files_and_directories_round_trip(tracking: TrackingClient, tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / "weights").mkdir(parents=True)
    (model / "config.json").write_text('{"layers": 3}')
    big = os.urandom(5 * 1024 * 1024)  # over the API's 3 MiB body limit
    (model / "weights" / "w.bin").write_bytes(big)
    (tmp_path / "notes.txt").write_text("first try")

    with cnai.start_run("art", client=tracking, spool_dir=tmp_path / "spool") as run:
        run.log_artifact(model, "model")
        cnai.log_artifact(tmp_path / "notes.txt")
    assert [f["path"] for f in tracking.list_artifacts(run.id)] == ["model", "notes.txt"]
    listed = tracking.list_artifacts(run.id, "model")
    assert {(f["path"], f["isDir"]) for f in listed} == {
        ("model/config.json", False),
        ("model/weights", True),
    }
    assert tracking.download_artifact(run.id, "model/weights/w.bin") == big
    assert tracking.download_artifact(run.id, "notes.txt") == b"first try"
    with pytest.raises(TrackingError, match="404"):
        tracking.download_artifact(run.id, "model/missing.bin")


@pytest.mark.parametrize(
    "path", ["../escape.txt", "a/../../escape.txt", "..%2Fescape.txt", "a\\b.txt"]
)
def test_an_artifact_path_cannot_leave_its_run(
    platform: RunningPlatform, tracking: TrackingClient, namespace: str, path: str
) -> None:
    run_id = tracking.create_run()["id"]
    answer = tracking.http.put(f"{BASE}/{namespace}/runs/{run_id}/artifacts/{path}", content=b"x")
    assert answer.status_code in (400, 404), answer.text
    assert not (platform.home / "artifacts" / namespace / "escape.txt").exists()


def test_artifacts_of_an_unknown_run_or_another_namespace_are_refused(
    platform: RunningPlatform, tracking: TrackingClient, namespace: str
) -> None:
    headers = {"Authorization": f"Bearer {platform.admin_token()}"}
    url = f"{platform.url}{BASE}/{namespace}/runs/{'f' * 32}/artifacts/a.txt"
    assert httpx.put(url, content=b"x", headers=headers).status_code == 404
    run_id = tracking.create_run()["id"]
    other = f"{platform.url}{BASE}/default/runs/{run_id}/artifacts/a.txt"
    assert httpx.put(other, content=b"x", headers=headers).status_code == 404


def test_the_mlflow_client_logs_and_downloads_artifacts(
    platform: RunningPlatform, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", platform.admin_token())
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    mlflow.set_tracking_uri(platform.url)
    try:
        client: Any = MlflowClient(platform.url)
        run_id = client.create_run("0").info.run_id
        data = tmp_path / "data"
        data.mkdir()
        (data / "a.csv").write_text("x,y\n1,2\n")
        (data / "b.csv").write_text("x,y\n3,4\n")
        client.log_artifacts(run_id, str(data), "tables")
        client.log_artifact(run_id, str(data / "a.csv"))
        assert sorted(f.path for f in client.list_artifacts(run_id)) == ["a.csv", "tables"]
        assert sorted(f.path for f in client.list_artifacts(run_id, "tables")) == [
            "tables/a.csv",
            "tables/b.csv",
        ]
        out = client.download_artifacts(run_id, "tables", str(tmp_path / "out"))
        assert (Path(out) / "b.csv").read_text() == "x,y\n3,4\n"
        # The same files, through cnai's own API.
        with TrackingClient(platform.url, platform.admin_token(), "default") as tracking:
            assert tracking.download_artifact(run_id, "tables/a.csv") == b"x,y\n1,2\n"
    finally:
        mlflow.set_tracking_uri(None)


def test_artifacts_in_an_fsspec_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CNAI_ARTIFACT_ROOT names any fsspec URL; memory:// lives in the server process."""
    from harness import start_platform

    monkeypatch.setenv("CNAI_ARTIFACT_ROOT", "memory://cnai-artifacts")
    server = start_platform(tmp_path / "home")
    try:
        with TrackingClient(server.url, server.admin_token(), "default") as tracking:
            run = tracking.create_run(name="remote")
            assert run["artifactUri"] == f"memory://cnai-artifacts/default/{run['id']}"
            (tmp_path / "m.bin").write_bytes(b"\x00\x01" * 1000)
            tracking.upload_artifact(run["id"], tmp_path / "m.bin", "model/m.bin")
            assert tracking.download_artifact(run["id"], "model/m.bin") == b"\x00\x01" * 1000
            assert [f["path"] for f in tracking.list_artifacts(run["id"])] == ["model"]
            assert not (tmp_path / "home" / "artifacts").exists()  # nothing on local disk
    finally:
        server.stop()
