"""Models of every format, written once per session to a temp dir, and real model
servers (uvicorn on a free loopback port, in a thread) to query with httpx.

The models are small and quick to fit: a LogisticRegression on iris (integer classes),
one on string labels, a regressor, the same classifier as ONNX (skl2onnx, without the
ZipMap so that its probabilities are a tensor), a tiny scripted torch module, and a
custom class in a module of its own.
"""

from __future__ import annotations

import pickle
import socket
import textwrap
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib  # type: ignore[import-untyped]
import numpy as np
import pytest
import uvicorn
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

from cnai.serving.models import ModelConfig, ModelSlot
from cnai.serving.server import ModelServer, ServerOptions

CUSTOM_MODULE = textwrap.dedent(
    '''
    """Custom models for the tests."""
    import time
    from pathlib import Path

    import numpy as np


    class Doubler:
        def __init__(self):
            self.factor = None

        def load(self, path):
            self.factor = float((Path(path) / "factor.txt").read_text())

        def predict(self, x):
            if np.any(x < 0):
                raise ValueError("negative input")
            return x * self.factor


    class Adder:
        """Two named inputs, declared by the class itself."""

        signature = {
            "inputs": [
                {"name": "a", "datatype": "INT64", "shape": [-1, 2]},
                {"name": "b", "datatype": "INT64", "shape": [-1, 2]},
            ],
            "outputs": [{"name": "sum", "datatype": "INT64", "shape": [-1, 2]}],
        }

        def predict(self, a, b):
            return a + b


    class Slow:
        """Loads only once the test creates a file named "go" next to the module."""

        def load(self, path):
            go = Path(path) / "go"
            for _ in range(3000):
                if go.exists():
                    return
                time.sleep(0.01)
            raise TimeoutError("no go")

        def predict(self, x):
            return x


    class Broken:
        def load(self):
            raise RuntimeError("weights are missing")

        def predict(self, x):
            return x
    '''
)


@dataclass(frozen=True)
class Models:
    """Where each model file lies."""

    root: Path
    classifier: LogisticRegression
    x: np.ndarray[Any, Any]

    @property
    def pickle(self) -> Path:
        return self.root / "iris.pkl"

    @property
    def joblib(self) -> Path:
        return self.root / "iris.joblib"

    @property
    def directory(self) -> Path:
        return self.root / "iris-dir"

    @property
    def labels(self) -> Path:
        return self.root / "labels.joblib"

    @property
    def regressor(self) -> Path:
        return self.root / "regressor.pkl"

    @property
    def onnx(self) -> Path:
        return self.root / "iris.onnx"

    @property
    def custom(self) -> Path:
        return self.root / "custom"


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("models")
    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=500).fit(x, y)
    found = Models(root, clf, x)
    found.pickle.write_bytes(pickle.dumps(clf))
    joblib.dump(clf, found.joblib)
    found.directory.mkdir()
    joblib.dump(clf, found.directory / "model.joblib")
    names = np.array(["setosa", "versicolor", "virginica"])
    joblib.dump(LogisticRegression(max_iter=500).fit(x, names[y]), found.labels)
    found.regressor.write_bytes(pickle.dumps(LinearRegression().fit(x[:, :3], x[:, 3])))
    _write_onnx(clf, found.onnx)
    found.custom.mkdir()
    (found.custom / "doubler.py").write_text(CUSTOM_MODULE)
    (found.custom / "factor.txt").write_text("2")
    return found


def _write_onnx(clf: LogisticRegression, path: Path) -> None:
    from skl2onnx import to_onnx

    onx = to_onnx(
        clf,
        np.zeros((1, 4), dtype=np.float32),
        options={id(clf): {"zipmap": False}},
        target_opset=17,
    )
    path.write_bytes(onx.SerializeToString())


@pytest.fixture(scope="session")
def torchscript_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scripted module: y = 2x + 1 and the row sums, as a tuple."""
    import torch

    class Affine(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            y = x * 2.0 + 1.0
            return y, y.sum(dim=1)

    path = tmp_path_factory.mktemp("torch") / "model.pt"
    with warnings.catch_warnings():
        # TorchScript is deprecated in favour of torch.export, yet it is what is deployed.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Affine()).save(str(path))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    """A model server on a loopback port, and an httpx client for it."""

    app: ModelServer
    url: str
    client: httpx.Client

    def wait_loaded(self, timeout: float = 30.0) -> None:
        """Until the model has loaded or failed (not until ready: a failure is final)."""
        deadline = time.monotonic() + timeout
        while not self.app.slot.state.terminal:
            if time.monotonic() > deadline:
                raise AssertionError("the model did not finish loading")
            time.sleep(0.01)
        # The slot is final; the event loop marks the server ready right after.
        while self.app.slot.model is not None and self._ready() != 200:
            if time.monotonic() > deadline:
                raise AssertionError("the server did not turn ready")
            time.sleep(0.01)

    def _ready(self) -> int:
        return self.client.get("/v2/health/ready").status_code


Serve = Callable[..., Running]


def _start(app: ModelServer) -> tuple[uvicorn.Server, threading.Thread, str]:
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise AssertionError("uvicorn did not start")
        time.sleep(0.005)
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def serve() -> Iterator[Serve]:
    """Start servers (each loaded before it is returned), all stopped at module end."""
    started: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(
        path: Path,
        fmt: str = "sklearn",
        name: str = "iris",
        wait: bool = True,
        **kw: Any,
    ) -> Running:
        config_keys = {"class_path", "signature", "version"}
        config = ModelConfig(
            name, str(path), fmt, **{k: v for k, v in kw.items() if k in config_keys}
        )
        options = ServerOptions(**{k: v for k, v in kw.items() if k not in config_keys})
        app = ModelServer(ModelSlot(config), options)
        server, thread, url = _start(app)
        client = httpx.Client(base_url=url, timeout=30)
        started.append((server, thread, client))
        running = Running(app, url, client)
        if wait:
            running.wait_loaded()
        return running

    yield start
    for server, thread, client in started:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)


def v2(data: Any, shape: list[int], datatype: str = "FP64", **extra: Any) -> dict[str, Any]:
    """A v2 request body with one input."""
    return {
        "inputs": [{"name": "input-0", "shape": shape, "datatype": datatype, "data": data}],
        **extra,
    }
