"""``cnai.start_run()`` and friends against real platforms: non-blocking logging, the
spool when the server is away, and no acknowledged point lost when the server dies."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness import RunningPlatform, free_port, start_platform

import cnai
from cnai.tracking.sdk import Run, TrackingClient, TrackingError


@pytest.fixture
def tracking(platform: RunningPlatform, namespace: str) -> Iterator[TrackingClient]:
    client = TrackingClient(platform.url, platform.admin_token(), namespace)
    yield client
    client.close()


def test_a_run_logged_through_the_module_functions(
    tracking: TrackingClient, tmp_path: Path
) -> None:
    run = cnai.start_run(
        "sdk", group="demo", params={"lr": 0.1}, client=tracking, spool_dir=tmp_path
    )
    for step in range(3000):
        cnai.log_metrics({"loss": 1 / (step + 1), "acc": step / 3000}, step=step)
    cnai.set_tags({"stage": "done"})
    cnai.end_run()
    got = tracking.get_run(run.id)
    assert (got["status"], got["params"], got["tags"]) == (
        "FINISHED",
        {"lr": "0.1"},
        {"stage": "done"},
    )
    loss = tracking.history(run.id, "loss")
    assert loss["steps"] == list(range(3000))
    assert loss["values"][-1] == 1 / 3000
    assert run.acked_points == 6000
    assert run.errors == []
    with pytest.raises(TrackingError, match="no active run"):
        cnai.log_metrics({"x": 1.0})
    with pytest.raises(TrackingError, match="has ended"):
        run.log_metrics({"x": 1.0})


def test_a_refused_batch_is_kept_as_an_error_not_retried(
    tracking: TrackingClient, tmp_path: Path
) -> None:
    with cnai.start_run(client=tracking, params={"lr": "0.1"}, spool_dir=tmp_path) as run:
        run.log_params({"lr": "0.5"})  # a param cannot change
        assert run.flush(timeout=30)
    assert len(run.errors) == 1
    assert "already logged as '0.1'" in run.errors[0]
    assert tracking.get_run(run.id)["params"] == {"lr": "0.1"}


def test_logging_never_waits_for_an_absent_server_and_spools_to_disk(
    platform: RunningPlatform, namespace: str, tracking: TrackingClient, tmp_path: Path
) -> None:
    """With the server unreachable, log_metrics returns, the points spill to the spool
    file past the memory bound, and all of them arrive once the server is reachable."""
    run_id = tracking.create_run(name="spooled")["id"]
    away = TrackingClient(f"http://127.0.0.1:{free_port()}", platform.admin_token(), namespace)
    run = Run(
        away,
        run_id,
        flush_interval=0.01,
        batch_points=100,
        max_buffer_points=300,
        spool_dir=tmp_path,
    )
    for step in range(2000):
        run.log_metric("loss", float(step), step=step)
    assert not run.flush(timeout=0.5)  # nothing can be acknowledged
    assert run.acked_points == 0
    assert run.spool.exists()  # past the memory bound: on disk
    run.client = tracking  # the server is reachable again
    away.close()
    assert run.flush(timeout=60)
    run.end()
    assert not run.spool.exists()
    assert sorted(tracking.history(run_id, "loss")["steps"]) == list(range(2000))


@pytest.mark.timeout(180)
def test_no_acknowledged_point_is_lost_when_the_server_is_killed(tmp_path: Path) -> None:
    """SIGKILL the platform while a run logs; every point acknowledged before the kill
    is there after a restart, and with the SDK's retries and batch ids, every point
    logged arrives exactly once."""
    home, port = tmp_path / "home", free_port()
    server = start_platform(home, port)
    try:
        tracking = TrackingClient(server.url, server.admin_token(), "default")
        run_id = tracking.create_run(name="survivor")["id"]
        run = Run(
            tracking, run_id, flush_interval=0.01, batch_points=500, spool_dir=tmp_path / "spool"
        )
        acked_at_kill: list[int] = []
        stop = threading.Event()

        def killer() -> None:
            while run.acked_points < 20_000 and not stop.is_set():
                time.sleep(0.005)
            server.proc.send_signal(signal.SIGKILL)
            server.proc.wait()
            acked_at_kill.append(run.acked_points)

        thread = threading.Thread(target=killer)
        thread.start()
        total = 60_000
        for step in range(total):
            run.log_metrics({"loss": float(step)}, step=step)
            if step % 1000 == 0:
                time.sleep(0.01)  # a training step takes time
        thread.join(timeout=60)
        stop.set()
        assert acked_at_kill
        assert 0 < acked_at_kill[0] < total

        server = start_platform(home, port)  # same home, same port
        assert run.flush(timeout=120)
        run.end()
        steps = sorted(tracking.history(run_id, "loss")["steps"])
        assert steps == list(range(total))  # all of them, each once
        tracking.close()
    finally:
        server.stop(signal.SIGKILL)


def test_an_unknown_run_id_is_refused_at_start(tracking: TrackingClient) -> None:
    with pytest.raises(TrackingError, match="404"):
        cnai.start_run(run_id="0" * 32, client=tracking)


def test_the_run_picked_up_from_the_environment(
    platform: RunningPlatform,
    namespace: str,
    tracking: TrackingClient,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Inside a workload cnai started, CNAI_RUN_ID names the run: no start_run call. The
    run is the job's: ending it in one worker only flushes (the platform ends it)."""
    run_id = tracking.create_run(name="from-env")["id"]
    monkeypatch.setenv("CNAI_RUN_ID", run_id)
    monkeypatch.setenv("CNAI_SERVER", platform.url)
    monkeypatch.setenv("CNAI_TOKEN", platform.admin_token())
    monkeypatch.setenv("CNAI_NAMESPACE", namespace)
    monkeypatch.setenv("CNAI_HOME", str(tmp_path))
    cnai.log_metrics({"loss": 0.5}, step=7)
    cnai.end_run()
    assert tracking.history(run_id, "loss")["steps"] == [7]
    assert tracking.get_run(run_id)["status"] == "RUNNING"
    assert httpx.get(f"{platform.url}/readyz", timeout=5).status_code == 200


def test_a_batch_over_the_servers_body_limit_is_split_not_lost(
    tracking: TrackingClient, tmp_path: Path
) -> None:
    """The server refuses bodies over 3 MiB (413); the SDK sends such a batch in halves,
    so a user never splits around the limit."""
    run_id = tracking.create_run(name="big-batch")["id"]
    run = Run(tracking, run_id, batch_points=10_000_000, flush_interval=60, spool_dir=tmp_path)
    total = 200_000  # about 8 MB of JSON in one batch
    for step in range(total // 2):
        run.log_metrics({"a": step * 1.000001, "b": -step * 1.000001}, step=step)
    assert run.flush(timeout=120)
    run.end()
    assert run.errors == []
    assert run.acked_points == total
    for key in ("a", "b"):
        assert tracking.history(run_id, key)["steps"] == list(range(total // 2))


def test_system_metrics_are_logged_when_asked(tracking: TrackingClient, tmp_path: Path) -> None:
    with cnai.start_run(
        "sys", client=tracking, system_metrics=0.05, spool_dir=tmp_path, flush_interval=0.01
    ) as run:
        deadline = time.monotonic() + 20
        while run.acked_points < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    history = tracking.history(run.id, "system/cpu_utilization_percentage")
    assert len(history["steps"]) >= 2
    assert history["steps"][:2] == [0, 1]
    assert all(0 <= v <= 100 for v in history["values"])
    assert tracking.get_run(run.id)["metrics"]["system/system_memory_usage_megabytes"]["value"] > 0


def test_register_model_from_the_active_run(
    platform: RunningPlatform, namespace: str, tracking: TrackingClient, tmp_path: Path
) -> None:
    """One call registers the next version from the run's artifacts, with lineage to the
    run, and moves the alias; a bad field is refused naming it, registering nothing."""
    model_file = tmp_path / "model.pt"
    model_file.write_bytes(b"weights")
    with cnai.start_run("fit", client=tracking, spool_dir=tmp_path) as run:
        cnai.log_artifact(model_file, "model")
        first = cnai.register_model(
            "Digits CNN", "model/model.pt", format="torchscript", metrics={"accuracy": 0.97}
        )
        second = cnai.register_model("Digits CNN", "model/model.pt", aliases=["champion"])
        with pytest.raises(TrackingError) as refused:
            cnai.register_model("Digits CNN", "model", format="pickle")
    assert "spec.format" in str(refused.value)
    assert (first["spec"]["version"], second["spec"]["version"]) == (1, 2)
    assert first["spec"]["runId"] == run.id
    assert first["spec"]["source"].endswith(f"/{run.id}/model/model.pt")
    assert first["spec"]["metrics"] == {"accuracy": 0.97}
    with platform.client() as client:
        model = client.get("model", first["spec"]["model"], namespace)
        assert model.spec["displayName"] == "Digits CNN"
        assert model.spec["aliases"] == {"champion": 2}
        assert model.status["latestVersion"] == 2
        versions = client.list("modelversion", namespace).items
        assert len(versions) == 2
