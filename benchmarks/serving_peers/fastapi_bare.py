"""The least a FastAPI model server does: one v2 infer endpoint, decode -> predict -> encode.

The floor for a Python server written the usual way: a pydantic model parses the
request (FastAPI validates the body against it), ``np.asarray`` makes the input array
of the declared datatype and shape, the estimator predicts, and a plain dict goes back
as JSON. No metrics, no logging per request, no readiness of a model loading in the
background, no error mapping beyond FastAPI's own 422: everything a real server adds is
the difference. The endpoints are ``async def``, so predict runs on the event loop as
cnai's small predicts do (a plain ``def`` would add a hop to FastAPI's thread pool per
request). uvicorn runs it on uvloop and httptools with the access log off, as cnai runs
its own server.

Run (in the fastapi environment): ``python benchmarks/serving_peers/fastapi_bare.py
--name iris --model DIR/model.joblib --port 8080``.
"""

from __future__ import annotations

import argparse
from typing import Any

import joblib
import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field

DTYPES = {"FP32": np.float32, "FP64": np.float64, "INT32": np.int32, "INT64": np.int64}


class Tensor(BaseModel):
    name: str = Field(description="Input name.")
    shape: list[int] = Field(description="Dimensions, rows first.")
    datatype: str = Field(description="FP32, FP64, INT32 or INT64.")
    data: list[Any] = Field(description="Values, flat (row-major) or nested.")


class InferRequest(BaseModel):
    id: str | None = Field(default=None, description="Echoed in the answer.")
    inputs: list[Tensor] = Field(description="The input tensors; the first is predicted.")


def build(name: str, model_path: str) -> FastAPI:
    estimator = joblib.load(model_path)
    app = FastAPI()

    @app.get("/v2/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    @app.post(f"/v2/models/{name}/infer")
    async def infer(request: InferRequest) -> dict[str, Any]:
        tensor = request.inputs[0]
        rows = np.asarray(tensor.data, dtype=DTYPES[tensor.datatype]).reshape(tensor.shape)
        labels = estimator.predict(rows)
        return {
            "model_name": name,
            "id": request.id,
            "outputs": [
                {
                    "name": "predict",
                    "shape": list(labels.shape),
                    "datatype": "INT64",
                    "data": labels.tolist(),
                }
            ],
        }

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--model", required=True, help="A joblib file.")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    uvicorn.run(
        build(args.name, args.model),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
