"""The one model a model server process holds: loading it, describing it, feeding it.

Four formats, each library imported only when its format is loaded (so a server of
ONNX models never pays for torch, and one of sklearn models never for onnxruntime):

- ``sklearn``: a pickle or joblib file, or a directory holding ``model.joblib``,
  ``model.pkl`` or ``model.pickle`` (joblib reads both kinds of file).
- ``onnx``: an ONNX Runtime session on the CPU with one intra-op and one inter-op
  thread: one server process is meant to use one core, and more pods scale it out.
- ``torchscript``: ``torch.jit.load`` on the CPU after ``torch.set_num_threads(1)``.
- ``custom``: ``module:Class`` imported with the model's directory on ``sys.path``; the
  class is built without arguments, its ``load()`` (given the model path if it takes an
  argument) is called once, and ``predict(ndarray) -> ndarray`` serves requests (with
  several inputs, ``predict(a, b, ...)``; a tuple result is several outputs).

Loading a model runs code from the model file (pickle, custom classes): model files
must come from a trusted registry.

The model's signature (its inputs and outputs: name, datatype, shape with -1 for a
dimension of any size, the first being the batch) comes from the ``signature`` the
registry passes, else from the model: ONNX declares its own, a scikit-learn estimator
its feature count and classes. Where nothing says how many dimensions an input has
(TorchScript, custom), its shape is unknown (``None``, shown as ``[-1]``) and only its
datatype is checked. Requests are checked against the signature here, with the same
field-naming errors as :mod:`cnai.serving.codec`.

A model that fails to load never raises into the server: :class:`ModelSlot` records the
error, which the server reports on its ready and infer endpoints.
"""

from __future__ import annotations

import enum
import functools
import importlib
import inspect
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cnai.serving import codec
from cnai.serving.codec import Array, CodecError, InferRequest

log = logging.getLogger(__name__)

FORMATS = ("sklearn", "onnx", "torchscript", "custom")
PLATFORMS = {
    "sklearn": "sklearn",
    "onnx": "onnxruntime_onnx",
    "torchscript": "pytorch_torchscript",
    "custom": "custom",
}
# File names looked for when the model path is a directory.
_FILES = {
    "sklearn": ("model.joblib", "model.pkl", "model.pickle"),
    "onnx": ("model.onnx",),
    "torchscript": ("model.pt", "model.pth", "model.torchscript"),
}
_ORT_DATATYPES = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}

Predict = Callable[[list[Array]], list[Array]]


class ModelLoadError(Exception):
    """The model could not be loaded; the message says why, for the ready endpoints."""


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a model."""

    name: str
    datatype: str
    shape: tuple[int, ...] | None  # -1: any size; None: not even the rank is known

    def to_dict(self) -> dict[str, Any]:
        shape = [-1] if self.shape is None else list(self.shape)
        return {"name": self.name, "datatype": self.datatype, "shape": shape}

    def accepts(self, shape: Sequence[int]) -> bool:
        if self.shape is None:
            return len(shape) >= 1  # rows, at least
        return len(shape) == len(self.shape) and all(
            want in (-1, got) for want, got in zip(self.shape, shape, strict=True)
        )


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def parse(cls, raw: Any, fallback: Signature) -> Signature:
        """A signature dict, JSON text or JSON file; a side it leaves out comes from
        ``fallback``. ModelLoadError names the field at fault."""
        if isinstance(raw, str):
            raw = _read_json(raw)
        if not isinstance(raw, Mapping):
            raise ModelLoadError("signature: must be an object with inputs and outputs")
        inputs, outputs = raw.get("inputs"), raw.get("outputs")
        return cls(
            inputs=fallback.inputs if inputs is None else _specs(inputs, "signature.inputs"),
            outputs=fallback.outputs if outputs is None else _specs(outputs, "signature.outputs"),
        )


def _read_json(text: str) -> Any:
    source = "signature"
    if not text.lstrip().startswith(("{", "[")):
        source = text
        try:
            text = Path(text).read_text()
        except OSError as exc:
            raise ModelLoadError(f"signature: cannot read {text}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ModelLoadError(f"{source}: not valid JSON: {exc}") from None


def _specs(raw: Any, where: str) -> tuple[TensorSpec, ...]:
    if not isinstance(raw, list) or not raw:
        raise ModelLoadError(f"{where}: must be a non-empty list of tensors")
    return tuple(_spec(item, f"{where}[{i}]") for i, item in enumerate(raw))


def _spec(raw: Any, where: str) -> TensorSpec:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise ModelLoadError(f"{where}.name: must be a non-empty string")
    datatype = raw.get("datatype")
    if datatype not in codec.NUMPY_DTYPES:
        raise ModelLoadError(f"{where}.datatype: unknown datatype {datatype!r}")
    shape = raw.get("shape")
    if shape is None:
        return TensorSpec(raw["name"], datatype, None)
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= -1 for d in shape
    ):
        raise ModelLoadError(f"{where}.shape: must be a list of sizes (-1 for any), got {shape}")
    return TensorSpec(raw["name"], datatype, tuple(shape))


@dataclass(frozen=True)
class ModelConfig:
    """What to load: the server's command line or a Pod's environment."""

    name: str
    path: str
    format: str
    class_path: str | None = None  # module:Class, for the custom format
    signature: Mapping[str, Any] | str | None = None  # a dict, JSON text or a JSON file
    version: str | None = None


@dataclass(frozen=True)
class Model:
    """A loaded model: its signature and its predict function, list of arrays in (one
    per input, in signature order) and list of arrays out (one per output)."""

    name: str
    platform: str
    signature: Signature
    predict_fn: Predict
    version: str | None = None
    # Which non-finite floats the model takes: "all", "nan" (not infinities) or "none".
    # scikit-learn refuses them in predict with a ValueError; refused here, they are the
    # client's 400 instead of a 500 for every request batched with it.
    non_finite: str = "all"

    @functools.cached_property
    def output_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.signature.outputs)

    @property
    def batchable(self) -> bool:
        """Whether requests can be stacked: every input's first dimension is free."""
        return all(s.shape is None or (s.shape and s.shape[0] == -1) for s in self.signature.inputs)

    def metadata(self) -> dict[str, Any]:
        """The v2 model metadata object."""
        meta: dict[str, Any] = {"name": self.name, "platform": self.platform}
        if self.version is not None:
            meta["versions"] = [self.version]
        meta["inputs"] = [spec.to_dict() for spec in self.signature.inputs]
        meta["outputs"] = [spec.to_dict() for spec in self.signature.outputs]
        return meta

    def predict(self, inputs: list[Array]) -> list[Array]:
        return self.predict_fn(inputs)

    def name_outputs(self, outputs: Sequence[Array]) -> list[tuple[str, Array]]:
        """Outputs paired with their names; any beyond the signature's are output-N."""
        names = self.output_names
        return [
            (names[i] if i < len(names) else f"output-{i}", out) for i, out in enumerate(outputs)
        ]

    # -- request checks --------------------------------------------------------------

    def v2_inputs(self, request: InferRequest) -> list[Array]:
        """The request's tensors in signature order, converted to the model's datatypes.
        CodecError for a missing, extra or misfit input, or an unknown output."""
        self._check_outputs(request.outputs)
        specs = self.signature.inputs
        if len(specs) == 1:
            if len(request.inputs) != 1:
                raise CodecError(
                    f"inputs: model {self.name} takes 1 input, got {len(request.inputs)}"
                )
            return [self._fit(request.inputs[0], specs[0], "inputs[0]")]
        return self._match_by_name(request)

    def _match_by_name(self, request: InferRequest) -> list[Array]:
        index = {tensor.name: i for i, tensor in enumerate(request.inputs)}
        wanted = {spec.name for spec in self.signature.inputs}
        for i, tensor in enumerate(request.inputs):
            if tensor.name not in wanted:
                raise CodecError(
                    f"inputs[{i}].name: model {self.name} has no input {tensor.name!r}; "
                    f"it takes {', '.join(sorted(wanted))}"
                )
        arrays = []
        for spec in self.signature.inputs:
            if spec.name not in index:
                raise CodecError(f"inputs: missing input {spec.name!r}")
            i = index[spec.name]
            arrays.append(self._fit(request.inputs[i], spec, f"inputs[{i}]"))
        return arrays

    def _check_outputs(self, requested: Sequence[str]) -> None:
        names = self.output_names
        for i, name in enumerate(requested):
            if name not in names:
                raise CodecError(
                    f"outputs[{i}].name: model {self.name} has no output {name!r}; "
                    f"it has {', '.join(names)}"
                )

    def v1_inputs(self, body: Any) -> list[Array]:
        """A v1 ``instances`` body as the model's one input."""
        if len(self.signature.inputs) != 1:
            raise CodecError(
                f"instances: model {self.name} takes {len(self.signature.inputs)} inputs; "
                "use the v2 protocol to name them"
            )
        spec = self.signature.inputs[0]
        array = codec.decode_v1(body, spec.datatype)
        where = "instances" if "instances" in body else "inputs"
        _check_shape(spec, array.shape, where)
        self._check_finite(array, where)
        return [array]

    def _fit(self, tensor: codec.Tensor, spec: TensorSpec, where: str) -> Array:
        if not codec.can_convert(tensor.datatype, spec.datatype):
            raise CodecError(
                f"{where}.datatype: model input {spec.name!r} takes {spec.datatype}, "
                f"got {tensor.datatype}"
            )
        _check_shape(spec, tensor.data.shape, f"{where}.shape")
        array = codec.convert(tensor.data, spec.datatype, f"{where}.data")
        self._check_finite(array, f"{where}.data")
        return array

    def _check_finite(self, array: Array, where: str) -> None:
        if self.non_finite == "all" or array.dtype.kind != "f" or np.isfinite(array).all():
            return
        if self.non_finite == "nan" and not np.isinf(array).any():
            return
        refused = "infinities" if self.non_finite == "nan" else "NaN or infinities"
        raise CodecError(f"{where}: model {self.name} does not accept {refused}")


def _check_shape(spec: TensorSpec, shape: tuple[int, ...], where: str) -> None:
    if not spec.accepts(shape):
        want = "at least 1 dimension" if spec.shape is None else list(spec.shape)
        raise CodecError(
            f"{where}: model input {spec.name!r} takes shape {want}, got {list(shape)}"
        )
    if shape and shape[0] == 0:  # scikit-learn refuses it; no model has anything to say about it
        raise CodecError(f"{where}: no rows to predict, got {list(shape)}")


# -- loading -------------------------------------------------------------------------


class LoadState(enum.StrEnum):
    """LOADING -> READY | FAILED. READY and FAILED are terminal: a server process loads
    its model once, and a new pod is how a model is loaded again."""

    LOADING = "Loading"
    READY = "Ready"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self is not LoadState.LOADING


class ModelSlot:
    """The server's one model, while it loads and after: ``load()`` never raises."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.name = config.name
        self.state = LoadState.LOADING
        self.model: Model | None = None
        self.error: str | None = None

    def load(self) -> None:
        """Load the model (blocking: the server runs this in a thread)."""
        started = time.perf_counter()
        try:
            model = load_model(self.config)
        except (Exception, SystemExit) as exc:  # a custom class may even call sys.exit
            self.error = (
                str(exc) if isinstance(exc, ModelLoadError) else f"{type(exc).__name__}: {exc}"
            )
            self.state = LoadState.FAILED
            log.error(
                "model %s failed to load from %s: %s", self.name, self.config.path, self.error
            )
            return
        self.model = model  # before the state, which other threads read
        self.state = LoadState.READY
        log.info(
            "model %s (%s) loaded in %.2f s",
            self.name,
            self.config.format,
            time.perf_counter() - started,
        )


def load_model(config: ModelConfig) -> Model:
    """Load ``config``'s model, warm it up, and describe it; raises on any failure."""
    if config.format not in FORMATS:
        raise ModelLoadError(
            f"unknown model format {config.format!r}; use one of {', '.join(FORMATS)}"
        )
    path = Path(config.path)
    if not path.exists():
        raise ModelLoadError(f"model path {path} does not exist")
    loader = {"sklearn": _sklearn, "onnx": _onnx, "torchscript": _torchscript, "custom": _custom}
    loaded = loader[config.format](path, config)
    signature = loaded.signature
    if config.signature is not None:
        signature = Signature.parse(config.signature, signature)
    model = Model(
        config.name,
        PLATFORMS[config.format],
        signature,
        loaded.predict,
        config.version,
        loaded.non_finite,
    )
    _warm_up(model)
    return model


@dataclass(frozen=True)
class _Loaded:
    """What a format's loader gives: the predict function and the inferred signature."""

    predict: Predict
    signature: Signature
    non_finite: str = "all"  # see Model.non_finite


def _model_file(path: Path, fmt: str) -> Path:
    if path.is_file():
        return path
    for name in _FILES[fmt]:
        if (path / name).is_file():
            return path / name
    raise ModelLoadError(f"no model file in {path}: expected one of {', '.join(_FILES[fmt])}")


def _warm_up(model: Model) -> None:
    """One predict on a row of zeros where the input shapes are known, so that the first
    client does not pay for lazy initialisation (ONNX Runtime, TorchScript)."""
    rows = []
    for spec in model.signature.inputs:
        shape = spec.shape
        if not shape or -1 in shape[1:] or spec.datatype == "BYTES":
            return
        first = 1 if shape[0] == -1 else shape[0]
        rows.append(np.zeros((first, *shape[1:]), dtype=codec.NUMPY_DTYPES[spec.datatype]))
    try:
        model.predict(rows)
    except Exception as exc:  # a model may refuse zeros; the clients' rows will tell
        log.warning("model %s: warm-up predict failed: %r", model.name, exc)


def _outputs(result: Any) -> list[Array]:
    """A predict result as a list of arrays: a tuple is several outputs."""
    if isinstance(result, tuple):
        return [np.asarray(item) for item in result]
    return [np.asarray(result)]


# -- formats -------------------------------------------------------------------------


def _sklearn(path: Path, config: ModelConfig) -> _Loaded:
    import joblib  # type: ignore[import-untyped]  # comes with scikit-learn

    file = _model_file(path, "sklearn")
    try:
        estimator = joblib.load(file)
    except (ImportError, AttributeError):
        raise  # the pickle names a module or class this environment lacks: say which
    except Exception as exc:
        raise ModelLoadError(
            f"{file} is not a pickle or joblib file: {type(exc).__name__}: {exc}"
        ) from None
    if not callable(getattr(estimator, "predict", None)):
        raise ModelLoadError(f"{type(estimator).__name__} loaded from {path} has no predict()")
    from sklearn import config_context  # type: ignore[import-untyped]

    features = getattr(estimator, "n_features_in_", -1)
    output = _sklearn_output_datatype(estimator)
    target = codec.NUMPY_DTYPES[output]
    native = estimator.predict
    non_finite = "nan" if _sklearn_allows_nan(estimator) else "none"
    # Where the server refuses every NaN and infinity itself (Model.non_finite), the
    # estimator's own finiteness check only repeats it: skipping it took a one-row
    # LogisticRegression predict from 102-108 us to 94-96 us. Where NaN is let through,
    # the check stays: a step that cannot take NaN must say so, not predict garbage.
    assume_finite = non_finite == "none"
    # The same reasoning for the rest of a linear model's checks (see _linear_predict).
    direct = _linear_predict(estimator, native) if assume_finite else None
    call = native if direct is None else direct

    def labels(rows: Array) -> list[Array]:
        return [np.asarray(call(rows)).astype(target, copy=False)]

    def predict(inputs: list[Array]) -> list[Array]:
        if direct is not None or not assume_finite:
            return labels(inputs[0])
        with config_context(assume_finite=True):
            return labels(inputs[0])

    signature = Signature(
        inputs=(TensorSpec("input-0", "FP64", (-1, int(features))),),
        outputs=(TensorSpec("predict", output, (-1,)),),
    )
    return _Loaded(predict, signature, non_finite)


def _linear_predict(
    estimator: Any, native: Callable[[Array], Any]
) -> Callable[[Array], Any] | None:
    """``estimator.predict`` without scikit-learn's per-call checks, for a linear model
    that predicts with scikit-learn's own linear code; None for any other.

    That code (``LinearClassifierMixin.predict`` and ``decision_function``,
    ``LinearModel.predict`` and ``_decision_function``) checks its input and then
    computes ``X @ coef_.T + intercept_`` and, for a classifier, the class of the
    highest score (of a score > 0 for two classes). The checks are the server's own for
    a float64 array of two dimensions, at least one row and the estimator's feature
    count, whose values the server has found finite (used only where it refuses NaN and
    infinities): such an array passes them unchanged. So the operations here are the
    same, on the same array: the same result, bit for bit, which is checked once on
    probe rows before it is used. Anything else (another dtype, a sparse ``coef_``) goes
    to ``native``. Measured on one core of the development machine, a one-row iris
    LogisticRegression predict took 3 us this way against 92 us through scikit-learn
    1.9, nearly all of it the checks (array-API and dataframe dispatch, validation), and
    the model server went from 3,200-3,600 to 10,200 requests/s
    (benchmarks/serving.py).
    """
    try:
        from sklearn.linear_model._base import (  # type: ignore[import-untyped]
            LinearClassifierMixin,
            LinearModel,
            MultiOutputLinearModel,
        )
    except ImportError:  # moved in another release: use predict itself
        return None
    cls = type(estimator)
    coef = getattr(estimator, "coef_", None)
    intercept = getattr(estimator, "intercept_", None)
    features = getattr(estimator, "n_features_in_", None)
    if not isinstance(coef, np.ndarray) or coef.ndim not in (1, 2) or not isinstance(features, int):
        return None
    if not isinstance(intercept, np.ndarray | float | int):
        return None
    weights = coef.T if coef.ndim == 2 else coef
    classifier = (
        cls.predict is LinearClassifierMixin.predict
        and cls.decision_function is LinearClassifierMixin.decision_function
    )
    regressor = (
        cls.predict in (LinearModel.predict, MultiOutputLinearModel.predict)
        and cls._decision_function is LinearModel._decision_function
    )
    classes = getattr(estimator, "classes_", None)
    if not (regressor or (classifier and isinstance(classes, np.ndarray))):
        return None
    table: Array = np.asarray(classes)  # unused for a regressor

    def predict(rows: Array) -> Any:
        if rows.dtype != np.float64 or rows.ndim != 2 or rows.shape[1] != features:
            return native(rows)
        scores = rows @ weights + intercept
        if regressor:
            return scores
        if scores.ndim == 2 and scores.shape[1] == 1:
            scores = scores.reshape(-1)
        picked = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
        return table.take(picked, axis=0)

    return predict if _same_predictions(predict, native, features) else None


def _same_predictions(fast: Callable[[Array], Any], native: Callable[[Array], Any], n: int) -> bool:
    """Whether ``fast`` gives exactly ``native``'s result on a few probe rows."""
    probe = np.random.default_rng(0).normal(scale=10.0, size=(16, n))
    probe = np.concatenate([np.zeros((1, n)), probe])
    try:
        want, got = np.asarray(native(probe)), np.asarray(fast(probe))
        single = np.asarray(native(probe[1:2])), np.asarray(fast(probe[1:2]))
    except Exception:  # a model that refuses the probe keeps its own predict
        return False
    same = want.dtype == got.dtype and np.array_equal(want, got)
    same = same and single[0].dtype == single[1].dtype and np.array_equal(*single)
    if not same:
        log.warning("the direct linear predict differs from the model's own: not used")
    return same


def _sklearn_allows_nan(estimator: Any) -> bool:
    """The estimator's own allow_nan tag; a Pipeline's is its first step's, as NaN is
    what an imputer there is for (a scaler there would pass NaN on to a model that may
    refuse it: that model's ValueError is then a 500)."""
    from sklearn.utils import get_tags  # type: ignore[import-untyped]

    steps = getattr(estimator, "steps", None)
    first = steps[0][1] if steps and steps[0][1] not in (None, "passthrough") else estimator
    try:
        return bool(get_tags(first).input_tags.allow_nan)
    except (AttributeError, TypeError, ValueError):
        return True  # unknown: let the estimator decide


def _sklearn_output_datatype(estimator: Any) -> str:
    """INT64, FP64, BOOL or BYTES after the classifier's classes; FP64 for a regressor."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return "FP64"
    kind = np.asarray(classes).dtype.kind
    return {"i": "INT64", "u": "INT64", "f": "FP64", "b": "BOOL"}.get(kind, "BYTES")


def _onnx(path: Path, config: ModelConfig) -> _Loaded:
    import onnxruntime as ort  # type: ignore[import-untyped]

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # errors only
    file = _model_file(path, "onnx")
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
    for node in session.get_inputs():
        if node.type not in _ORT_DATATYPES:
            raise ModelLoadError(f"ONNX input {node.name!r} has type {node.type}: not a tensor")
    # Outputs that are not tensors (a classifier's ZipMap of probabilities) are left out.
    outputs = [node for node in session.get_outputs() if node.type in _ORT_DATATYPES]
    if not outputs:
        raise ModelLoadError(f"{file} has no tensor output")
    input_names = [node.name for node in session.get_inputs()]
    output_names = [node.name for node in outputs]

    def predict(inputs: list[Array]) -> list[Array]:
        result = session.run(output_names, dict(zip(input_names, inputs, strict=True)))
        return [np.asarray(item) for item in result]

    signature = Signature(
        inputs=tuple(_ort_spec(node) for node in session.get_inputs()),
        outputs=tuple(_ort_spec(node) for node in outputs),
    )
    return _Loaded(predict, signature)


def _ort_spec(node: Any) -> TensorSpec:
    shape = tuple(dim if isinstance(dim, int) and dim >= 0 else -1 for dim in node.shape)
    return TensorSpec(node.name, _ORT_DATATYPES[node.type], shape)


def _torchscript(path: Path, config: ModelConfig) -> _Loaded:
    import torch

    torch.set_num_threads(1)
    file = str(_model_file(path, "torchscript"))
    with warnings.catch_warnings():
        # torch deprecates TorchScript for torch.export, but TorchScript files are what
        # is deployed; the warning would only be noise in every pod's log.
        warnings.filterwarnings("ignore", message=r".*torch\.jit", category=DeprecationWarning)
        module = torch.jit.load(file, map_location="cpu")  # type: ignore[no-untyped-call]
    module.eval()

    def predict(inputs: list[Array]) -> list[Array]:
        with torch.inference_mode():
            result = module(*(torch.from_numpy(array) for array in inputs))
        if isinstance(result, list | tuple):
            return [item.numpy() for item in result]
        return [result.numpy()]

    signature = Signature(
        inputs=(TensorSpec("input-0", "FP32", None),),
        outputs=(TensorSpec("output-0", "FP32", None),),
    )
    return _Loaded(predict, signature)


def _custom(path: Path, config: ModelConfig) -> _Loaded:
    module_name, _, class_name = (config.class_path or "").partition(":")
    if not module_name or not class_name:
        raise ModelLoadError("the custom format needs --class module:Class")
    where = str(path if path.is_dir() else path.parent)
    if where not in sys.path:
        sys.path.insert(0, where)
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if cls is None:
        raise ModelLoadError(f"module {module_name} has no class {class_name}")
    instance = cls()
    load = getattr(instance, "load", None)
    if callable(load) and inspect.signature(load).parameters:
        load(str(path))
    elif callable(load):
        load()
    native = instance.predict

    def predict(inputs: list[Array]) -> list[Array]:
        return _outputs(native(*inputs))

    default = Signature(
        inputs=(TensorSpec("input-0", "FP64", None),),
        outputs=(TensorSpec("output-0", "FP64", None),),
    )
    own = getattr(instance, "signature", None)
    return _Loaded(predict, default if own is None else Signature.parse(own, default))
