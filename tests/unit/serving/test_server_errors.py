"""What a model server answers to requests it cannot serve: each error a JSON
``{"error"}`` with the right status, never a 500, and the server keeps serving."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Models, Running, Serve, v2

LIMIT = 4096


@pytest.fixture(scope="module")
def iris(serve: Serve, models: Models) -> Running:
    return serve(models.pickle, max_body_bytes=LIMIT)


def raw(content: bytes) -> dict[str, Any]:
    return {"content": content}


def body(payload: Any) -> dict[str, Any]:
    return {"json": payload}


INFER = "/v2/models/iris/infer"
PREDICT = "/v1/models/iris:predict"
GOOD_ROW = [[5.1, 3.5, 1.4, 0.2]]

CASES = [
    # 400: the body
    pytest.param(
        "POST", INFER, raw(b'{"inputs": ['), 400, "request body: not valid JSON", id="truncated"
    ),
    pytest.param("POST", INFER, raw(b""), 400, "request body: empty", id="empty"),
    pytest.param(
        "POST", INFER, raw(b"\xff\xfe"), 400, "request body: not valid JSON", id="not-utf8"
    ),
    pytest.param("POST", INFER, raw(b"[" * 4000), 400, "request body: not valid JSON", id="deep"),
    pytest.param(
        "POST", INFER, body([1, 2]), 400, "request body: must be a JSON object", id="list"
    ),
    pytest.param(
        "POST", INFER, body({"instances": GOOD_ROW}), 400, "inputs: must be", id="v1-to-v2"
    ),
    # 400: tensors
    pytest.param(
        "POST",
        INFER,
        body(v2([1, 2, 3], [1, 3])),
        400,
        "inputs[0].shape: model input 'input-0' takes shape [-1, 4], got [1, 3]",
        id="features",
    ),
    pytest.param(
        "POST",
        INFER,
        body(v2([1, 2, 3], [1, 4])),
        400,
        "inputs[0].shape: [1, 4] needs 4 elements, got 3",
        id="count",
    ),
    pytest.param(
        "POST",
        INFER,
        body(v2([1, 2, 3, "x"], [1, 4], "FP32")),
        400,
        "inputs[0].data[3]: FP32 needs numbers, got 'x'",
        id="string",
    ),
    pytest.param(
        "POST",
        INFER,
        body(v2(["a"] * 4, [1, 4], "BYTES")),
        400,
        "inputs[0].datatype: model input 'input-0' takes FP64, got BYTES",
        id="datatype",
    ),
    pytest.param(
        "POST",
        INFER,
        body(v2([1] * 4, [1, 4], "FP99")),
        400,
        "inputs[0].datatype: unknown datatype 'FP99'",
        id="unknown-datatype",
    ),
    pytest.param(
        "POST",
        INFER,
        body({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32"}]}),
        400,
        "inputs[0].data: must be a list",
        id="no-data",
    ),
    pytest.param(
        "POST",
        INFER,
        body(v2([1e300] * 4, [1, 4], "FP32")),
        400,
        "inputs[0].data[0]: 1e+300 is out of range for FP32",
        id="overflow",
    ),
    pytest.param(
        "POST",
        INFER,
        body(v2([1] * 4, [1, 4], outputs=[{"name": "nope"}])),
        400,
        "outputs[0].name: model iris has no output 'nope'",
        id="output",
    ),
    pytest.param(
        "POST",
        INFER,
        raw(
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",'
            b' "data": [NaN, 1, 2, Infinity]}]}'
        ),
        400,
        "inputs[0].data: model iris does not accept NaN or infinities",
        id="nan",
    ),
    pytest.param(
        "POST",
        INFER,
        body(v2([], [0, 4])),
        400,
        "inputs[0].shape: no rows to predict",
        id="no-rows",
    ),
    # 400: v1
    pytest.param(
        "POST",
        PREDICT,
        body({"instances": [[1, 2, 3]]}),
        400,
        "instances: model input 'input-0' takes shape [-1, 4], got [1, 3]",
        id="v1-features",
    ),
    pytest.param(
        "POST",
        PREDICT,
        body({"instances": [[1, 2, 3, None]]}),
        400,
        "instances[0][3]: FP64 needs numbers, got null",
        id="v1-null",
    ),
    pytest.param(
        "POST",
        PREDICT,
        body({"instances": [[1, 2, 3, 4], [1]]}),
        400,
        "instances: nested lists",
        id="v1-ragged",
    ),
    pytest.param(
        "POST",
        PREDICT,
        body({"rows": GOOD_ROW}),
        400,
        "inputs: must be a non-empty list",
        id="v1-no-instances",
    ),
    # 404
    pytest.param(
        "POST",
        "/v2/models/other/infer",
        body(v2([1] * 4, [1, 4])),
        404,
        "model 'other' not found; this server serves 'iris'",
        id="model",
    ),
    pytest.param("GET", "/v2/models/other", {}, 404, "model 'other' not found", id="metadata"),
    pytest.param(
        "GET", "/v2/models/other/ready", {}, 404, "model 'other' not found", id="model-ready"
    ),
    pytest.param(
        "GET",
        "/v2/models/iris/versions/9",
        {},
        404,
        "model 'iris' has no version '9'",
        id="version",
    ),
    pytest.param("GET", "/v1/models/other", {}, 404, "model 'other' not found", id="v1-model"),
    pytest.param(
        "POST",
        "/v1/models/other:predict",
        body({"instances": GOOD_ROW}),
        404,
        "model 'other' not found",
        id="v1-predict",
    ),
    pytest.param(
        "POST",
        "/v1/models/iris:explain",
        body({"instances": GOOD_ROW}),
        404,
        "no endpoint at /v1/models/iris:explain",
        id="verb",
    ),
    pytest.param("GET", "/v3/models", {}, 404, "no endpoint at /v3/models", id="path"),
    pytest.param("GET", "/", {}, 404, "no endpoint at /", id="root"),
    # 405
    pytest.param(
        "GET",
        INFER,
        {},
        405,
        "GET is not allowed on /v2/models/iris/infer; use POST",
        id="get-infer",
    ),
    pytest.param("PUT", PREDICT, body({}), 405, "PUT is not allowed", id="put-predict"),
    pytest.param("POST", "/v2/health/live", body({}), 405, "POST is not allowed", id="post-live"),
    pytest.param("DELETE", "/v2/models/iris", {}, 405, "DELETE is not allowed", id="delete-model"),
    # 413
    pytest.param(
        "POST",
        INFER,
        raw(b" " * (LIMIT + 1)),
        413,
        f"request body is larger than the limit of {LIMIT} bytes",
        id="too-large",
    ),
    pytest.param(
        "POST", PREDICT, raw(b" " * (LIMIT + 1)), 413, "request body is larger", id="too-large-v1"
    ),
]


@pytest.mark.parametrize(("method", "path", "kw", "status", "error"), CASES)
def test_each_bad_request_gets_its_status_and_a_json_error(
    iris: Running, method: str, path: str, kw: dict[str, Any], status: int, error: str
) -> None:
    answer = iris.client.request(method, path, **kw)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"].startswith(error)
    if status == 405:
        assert answer.headers["allow"] in ("GET", "POST")
    # And the server still answers.
    good = iris.client.post(PREDICT, json={"instances": GOOD_ROW})
    assert (good.status_code, good.json()) == (200, {"predictions": [0]})


def test_a_streamed_body_over_the_limit_is_refused_while_it_arrives(iris: Running) -> None:
    def chunks() -> Iterator[bytes]:  # no content-length: chunked transfer encoding
        for _ in range(8):
            yield b" " * 1024

    answer = iris.client.post(INFER, content=chunks())
    assert answer.status_code == 413
    assert iris.client.get("/v2/health/live").status_code == 200


def test_a_body_at_the_limit_is_read(iris: Running) -> None:
    payload = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    answer = iris.client.post(PREDICT, content=payload + b" " * (LIMIT - len(payload)))
    assert (answer.status_code, answer.json()) == (200, {"predictions": [0]})
