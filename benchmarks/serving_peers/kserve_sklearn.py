"""KServe's Python ModelServer serving a scikit-learn model, as KServe's sklearnserver does.

KServe's own sklearnserver image is not published on PyPI, so this is its model class
(``sklearnserver/model.py``) reduced to what a one-file joblib model needs: ``load``
reads the file, ``predict`` takes the request's first input as an array
(``get_predict_input``), calls the estimator and builds the v2 answer
(``get_predict_response``). Everything else, the FastAPI app, its middlewares, the v2
endpoints, the request and response models, logging and Prometheus metrics, is
``kserve.ModelServer``'s, configured by its own flags: ``--http_port``,
``--grpc_port``, ``--enable_grpc``, ``--configure_logging``,
``--enable_latency_logging`` and the rest (``kserve.model_server.parser``).

Run (in the kserve environment): ``python benchmarks/serving_peers/kserve_sklearn.py
--model_name iris --model_dir DIR --http_port 8080 --grpc_port 8081``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import joblib
from kserve import Model, ModelServer, model_server
from kserve.errors import InferenceError
from kserve.utils.utils import get_predict_input, get_predict_response


class SKLearnModel(Model):
    """One joblib file, predicted with ``estimator.predict``."""

    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self._model: Any = None

    def load(self) -> bool:
        self._model = joblib.load(Path(self.model_dir) / "model.joblib")
        self.ready = True
        return self.ready

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        try:
            result = self._model.predict(get_predict_input(payload))
            return get_predict_response(payload, result, self.name)
        except Exception as exc:
            raise InferenceError(str(exc)) from exc


def main() -> None:
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_dir", required=True, help="Directory holding model.joblib.")
    args, _ = parser.parse_known_args()
    model = SKLearnModel(args.model_name, args.model_dir)
    model.load()
    ModelServer().start([model])


if __name__ == "__main__":
    main()
