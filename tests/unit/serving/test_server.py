"""Protocol conformance of the model server, over HTTP on a loopback port: every v2 and
v1 endpoint as a client uses it, with sklearn, ONNX and custom models."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from cnai.serving.models import LoadState
from cnai.version import __version__

from .conftest import Models, Running, Serve, v2


@pytest.fixture(scope="module")
def iris(serve: Serve, models: Models) -> Running:
    return serve(models.pickle, version="1")


def test_server_metadata_and_health(iris: Running) -> None:
    http = iris.client
    assert http.get("/v2").json() == {"name": "cnai", "version": __version__, "extensions": []}
    live = http.get("/v2/health/live")
    assert (live.status_code, live.headers["content-type"]) == (200, "application/json")
    assert http.get("/v2/health/ready").status_code == 200


def test_model_metadata_and_readiness(iris: Running) -> None:
    http = iris.client
    meta = http.get("/v2/models/iris").json()
    assert meta == {
        "name": "iris",
        "platform": "sklearn",
        "versions": ["1"],
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
    }
    assert http.get("/v2/models/iris/versions/1").json() == meta
    assert http.get("/v2/models/iris/ready").json() == {"name": "iris", "ready": True}
    assert http.get("/v2/models/iris/versions/1/ready").status_code == 200
    assert http.get("/v1/models/iris").json() == {"name": "iris", "ready": True}


@pytest.mark.parametrize(
    "path", ["/v2/models/iris/infer", "/v2/models/iris/versions/1/infer", "/v2/models/iris/infer/"]
)
def test_v2_infer_answers_each_row(iris: Running, models: Models, path: str) -> None:
    rows = models.x[[0, 60, 120]]
    body = v2(rows.reshape(-1).tolist(), [3, 4], "FP32", id="req-7")
    answer = iris.client.post(path, json=body)
    assert answer.status_code == 200
    assert answer.json() == {
        "model_name": "iris",
        "model_version": "1",
        "id": "req-7",
        "outputs": [
            {
                "name": "predict",
                "shape": [3],
                "datatype": "INT64",
                "data": models.classifier.predict(rows).tolist(),
            }
        ],
    }


def test_v2_infer_takes_nested_data(iris: Running, models: Models) -> None:
    rows = models.x[[0, 120]]
    answer = iris.client.post("/v2/models/iris/infer", json=v2(rows.tolist(), [2, 4]))
    assert answer.json()["outputs"][0]["data"] == models.classifier.predict(rows).tolist()


def test_v1_predict_and_its_inputs_form(iris: Running, models: Models) -> None:
    rows = models.x[[0, 120]]
    expected = {"predictions": models.classifier.predict(rows).tolist()}
    for key in ("instances", "inputs"):
        answer = iris.client.post("/v1/models/iris:predict", json={key: rows.tolist()})
        assert (answer.status_code, answer.json()) == (200, expected)


def test_metrics_are_prometheus_text(iris: Running) -> None:
    answer = iris.client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert 'cnai_inference_model_ready{model="iris"} 1.0' in answer.text


def test_requested_outputs_are_the_only_ones_returned(serve: Serve, models: Models) -> None:
    onnx = serve(models.onnx, "onnx")
    body = {
        "inputs": [
            {"name": "X", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
        ],
        "outputs": [{"name": "probabilities"}],
    }
    answer = onnx.client.post("/v2/models/iris/infer", json=body).json()
    [output] = answer["outputs"]
    assert (output["name"], output["shape"], output["datatype"]) == (
        "probabilities",
        [1, 3],
        "FP32",
    )
    assert sum(output["data"]) == pytest.approx(1.0, abs=1e-5)
    both = onnx.client.post("/v2/models/iris/infer", json={"inputs": body["inputs"]}).json()
    assert [o["name"] for o in both["outputs"]] == ["label", "probabilities"]


def test_a_custom_model_gets_fp32_rows_as_its_default_fp64(serve: Serve, models: Models) -> None:
    doubler = serve(models.custom, "custom", name="doubler", class_path="doubler:Doubler")
    answer = doubler.client.post(
        "/v2/models/doubler/infer", json=v2([[1.5, 2.0, 3.0]], [1, 3], "FP32")
    )
    assert answer.json()["outputs"] == [
        {"name": "output-0", "shape": [1, 3], "datatype": "FP64", "data": [3.0, 4.0, 6.0]}
    ]


def test_batched_requests_each_get_their_own_answer(serve: Serve, models: Models) -> None:
    batched = serve(models.pickle, max_batch_size=8, max_latency_ms=20)
    rows = models.x[::10]  # 15 rows of the three classes
    answers: dict[int, Any] = {}

    def ask(i: int) -> None:
        body = v2(rows[i].tolist(), [1, 4], "FP32", id=str(i))
        with httpx.Client(base_url=batched.url, timeout=30) as http:
            answers[i] = http.post("/v2/models/iris/infer", json=body).json()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(rows))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    expected = models.classifier.predict(rows).tolist()
    assert {i: a["id"] for i, a in answers.items()} == {i: str(i) for i in range(len(rows))}
    assert [answers[i]["outputs"][0]["data"] for i in range(len(rows))] == [[e] for e in expected]


# -- a model that is not (yet) ready ---------------------------------------------------


def test_a_model_that_failed_to_load_is_never_ready_but_the_server_lives(
    serve: Serve, tmp_path: Path
) -> None:
    corrupt = tmp_path / "model.pkl"
    corrupt.write_bytes(b"garbage")
    failed = serve(corrupt)
    assert failed.app.slot.state is LoadState.FAILED
    http = failed.client
    assert http.get("/v2/health/live").status_code == 200
    ready = http.get("/v2/health/ready")
    assert ready.status_code == 503
    assert "is not a pickle or joblib file" in ready.json()["error"]
    for path in ("/v2/models/iris/ready", "/v1/models/iris", "/v2/models/iris"):
        assert http.get(path).status_code == 503, path
    infer = http.post("/v2/models/iris/infer", json=v2([1, 2, 3, 4], [1, 4]))
    assert infer.status_code == 503
    assert infer.json()["error"].startswith("model iris is not ready: ")
    predict = http.post("/v1/models/iris:predict", json={"instances": [[1, 2, 3, 4]]})
    assert predict.status_code == 503


def test_live_answers_while_the_model_loads(serve: Serve, models: Models, tmp_path: Path) -> None:
    directory = tmp_path / "slow"
    shutil.copytree(models.custom, directory)
    slow = serve(directory, "custom", name="slow", class_path="doubler:Slow", wait=False)
    try:
        http = slow.client
        assert http.get("/v2/health/live").status_code == 200
        ready = http.get("/v2/health/ready")
        assert (ready.status_code, ready.json()["error"]) == (
            503,
            "model slow is not ready: still loading",
        )
        assert http.post("/v2/models/slow/infer", json=v2([1.0], [1, 1])).status_code == 503
    finally:
        (directory / "go").touch()
    slow.wait_loaded()
    answer = slow.client.post("/v2/models/slow/infer", json=v2([1.0], [1, 1]))
    assert answer.json()["outputs"][0]["data"] == [1.0]


def test_a_failing_predict_is_a_logged_500_and_the_server_goes_on(
    serve: Serve, models: Models, caplog: pytest.LogCaptureFixture
) -> None:
    doubler = serve(models.custom, "custom", name="doubler", class_path="doubler:Doubler")
    answer = doubler.client.post("/v2/models/doubler/infer", json=v2([-1.0], [1, 1]))
    assert answer.status_code == 500
    assert answer.json() == {"error": "model doubler failed to predict: ValueError: negative input"}
    assert any("predict failed" in r.getMessage() for r in caplog.records)
    again = doubler.client.post("/v2/models/doubler/infer", json=v2([1.0], [1, 1]))
    assert again.json()["outputs"][0]["data"] == [2.0]


def test_predict_runs_on_rows_shaped_as_sent(iris: Running) -> None:
    # Many rows at once: the answer keeps their order.
    rows = np.tile(np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]), (50, 1))
    answer = iris.client.post("/v2/models/iris/infer", json=v2(rows.tolist(), [100, 4]))
    assert answer.json()["outputs"][0]["data"] == [0, 2] * 50
