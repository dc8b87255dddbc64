"""``python -m cnai.serving.server`` as a Pod runs it: flags or environment variables, a
real subprocess serving a scikit-learn model, a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cnai.serving.server import DEFAULT_MAX_BODY_BYTES, DEFAULT_PORT, build, parse_args

from .conftest import Models, free_port, v2


def test_flags_default_to_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CNAI_MODEL_NAME", "iris")
    monkeypatch.setenv("CNAI_MODEL_PATH", "/models/iris")
    monkeypatch.setenv("CNAI_MODEL_FORMAT", "onnx")
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("CNAI_MAX_BATCH_SIZE", "16")
    args = parse_args([])
    assert (args.name, args.model, args.format, args.port) == ("iris", "/models/iris", "onnx", 9000)
    assert (args.max_batch_size, args.max_latency_ms) == (16, 5.0)
    assert parse_args(["--port", "9100", "--name", "other"]).port == 9100  # flags win
    server = build(args)
    assert (server.slot.name, server.slot.config.format) == ("iris", "onnx")
    assert server.options.max_body_bytes == DEFAULT_MAX_BODY_BYTES


def test_defaults_without_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CNAI_MODEL_FORMAT", "PORT", "CNAI_HOST", "CNAI_MAX_BATCH_SIZE"):
        monkeypatch.delenv(name, raising=False)
    args = parse_args(["--name", "m", "--model", "m.pkl"])
    assert (args.format, args.host, args.port, args.max_batch_size) == (
        "sklearn",
        "127.0.0.1",
        DEFAULT_PORT,
        1,
    )


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--model", "m.pkl"], id="no-name"),
        pytest.param(["--name", "m", "--model", "m.pkl", "--format", "tf"], id="format"),
        pytest.param(["--name", "m", "--model", "m.pkl", "--max-batch-size", "0"], id="batch"),
    ],
)
def test_bad_command_lines_exit_with_usage(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CNAI_MODEL_NAME", raising=False)
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2


@pytest.fixture
def process(models: Models, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    port = free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "CNAI_MODEL_NAME": "iris", "CNAI_MODEL_FORMAT": "sklearn"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "cnai.serving.server", "--model", str(models.joblib)),
                *("--port", str(port), "--max-batch-size", "4", "--max-latency-ms", "1"),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    yield proc, f"http://127.0.0.1:{port}", log
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=10)


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/v2/health/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"the server did not turn ready:\n{log.read_text()}")


def test_the_server_runs_as_a_process_and_stops_on_sigterm(
    process: tuple[subprocess.Popen[bytes], str, Path], models: Models
) -> None:
    proc, url, log = process
    wait_ready(url, proc, log)
    rows = models.x[[0, 120]]
    with httpx.Client(base_url=url, timeout=10) as http:
        answer = http.post("/v2/models/iris/infer", json=v2(rows.tolist(), [2, 4], "FP32"))
        assert answer.json()["outputs"][0]["data"] == models.classifier.predict(rows).tolist()
        v1 = http.post("/v1/models/iris:predict", json={"instances": rows.tolist()})
        assert v1.json() == {"predictions": models.classifier.predict(rows).tolist()}
        assert "cnai_inference_requests_total" in http.get("/metrics").text
    proc.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal once it has shut down, so a parent sees it.
    assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
    output = log.read_text()
    assert "Application shutdown complete" in output
    assert "model iris (sklearn) loaded" in output
    assert "POST /v2/models/iris/infer" not in output  # no access log


def test_a_bad_environment_variable_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "eighty")
    with pytest.raises(SystemExit) as exited:
        parse_args(["--name", "m", "--model", "m.pkl"])
    assert exited.value.code == 2
