"""Loading one model of each format, its signature (given or inferred), requests checked
against it, and load failures that are reported rather than raised."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import joblib  # type: ignore[import-untyped]
import numpy as np
import pytest

from cnai.serving import codec
from cnai.serving.codec import CodecError
from cnai.serving.models import (
    LoadState,
    Model,
    ModelConfig,
    ModelLoadError,
    ModelSlot,
    load_model,
)

from .conftest import Models, v2

IRIS_SIGNATURE = {
    "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
    "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]}],
}


def load(path: Path, fmt: str = "sklearn", **kw: Any) -> Model:
    return load_model(ModelConfig("m", str(path), fmt, **kw))


def request(data: Any, shape: list[int], datatype: str = "FP64", **kw: Any) -> codec.InferRequest:
    return codec.decode_request(v2(data, shape, datatype, **kw))


# -- formats -------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["pickle", "joblib", "directory"])
def test_sklearn_loads_from_a_pickle_a_joblib_file_or_a_directory(
    models: Models, which: str
) -> None:
    model = load(getattr(models, which))
    assert model.metadata() == {"name": "m", "platform": "sklearn", **IRIS_SIGNATURE}
    rows = models.x[:5]
    [labels] = model.predict([rows])
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, models.classifier.predict(rows))


def test_sklearn_string_classes_are_bytes_and_a_regressor_gives_floats(models: Models) -> None:
    labels = load(models.labels)
    assert labels.signature.outputs[0].datatype == "BYTES"
    [out] = labels.predict([models.x[:1]])
    assert codec.encode_tensor("predict", out)["data"] == ["setosa"]
    regressor = load(models.regressor)
    assert regressor.signature.inputs[0].shape == (-1, 3)
    assert regressor.signature.outputs[0].datatype == "FP64"
    assert regressor.predict([models.x[:2, :3]])[0].dtype == np.float64


def test_onnx_describes_itself_and_predicts_like_the_estimator(models: Models) -> None:
    model = load(models.onnx, "onnx")
    assert model.metadata()["platform"] == "onnxruntime_onnx"
    assert [s.to_dict() for s in model.signature.inputs] == [
        {"name": "X", "datatype": "FP32", "shape": [-1, 4]}
    ]
    assert [(s.name, s.datatype, s.shape) for s in model.signature.outputs] == [
        ("label", "INT64", (-1,)),
        ("probabilities", "FP32", (-1, 3)),
    ]
    rows = models.x[:10].astype(np.float32)
    labels, probabilities = model.predict([rows])
    np.testing.assert_array_equal(labels, models.classifier.predict(rows))
    assert probabilities.shape == (10, 3)


def test_onnx_outputs_that_are_not_tensors_are_left_out(models: Models, tmp_path: Path) -> None:
    from skl2onnx import to_onnx

    onx = to_onnx(models.classifier, np.zeros((1, 4), dtype=np.float32), target_opset=17)
    (tmp_path / "model.onnx").write_bytes(onx.SerializeToString())
    model = load(tmp_path, "onnx")  # a directory holding model.onnx
    assert model.output_names == ("output_label",)  # not the ZipMap of probabilities
    assert model.predict([models.x[:3].astype(np.float32)])[0].tolist() == [0, 0, 0]


def test_torchscript_runs_with_the_given_signature(torchscript_model: Path) -> None:
    signature = {
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [
            {"name": "y", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "total", "datatype": "FP32", "shape": [-1]},
        ],
    }
    model = load(torchscript_model, "torchscript", signature=signature)
    assert model.metadata()["platform"] == "pytorch_torchscript"
    y, total = model.predict([np.array([[1, 2, 3]], dtype=np.float32)])
    assert y.tolist() == [[3, 5, 7]]
    assert total.tolist() == [15]
    assert [name for name, _ in model.name_outputs([y, total])] == ["y", "total"]


def test_torchscript_without_a_signature_checks_only_datatype_and_rows(
    torchscript_model: Path,
) -> None:
    model = load(torchscript_model, "torchscript")
    assert model.metadata()["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": [-1]}]
    inputs = model.v2_inputs(request([1, 2], [1, 2], "FP64"))
    assert inputs[0].dtype == np.float32
    with pytest.raises(CodecError, match="takes shape at least 1 dimension, got"):
        model.v2_inputs(request([1], [], "FP32"))


def test_custom_class_loads_from_the_model_directory(models: Models) -> None:
    model = load(models.custom, "custom", class_path="doubler:Doubler")
    assert model.predict([np.array([[1.5]])])[0].tolist() == [[3.0]]
    assert model.metadata()["platform"] == "custom"
    assert model.output_names == ("output-0",)


def test_a_custom_class_may_declare_its_own_signature(models: Models) -> None:
    model = load(models.custom, "custom", class_path="doubler:Adder")
    assert [s.name for s in model.signature.inputs] == ["a", "b"]
    body = {
        "inputs": [
            {"name": "b", "shape": [1, 2], "datatype": "INT32", "data": [10, 20]},
            {"name": "a", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]},
        ]
    }
    a, b = model.v2_inputs(codec.decode_request(body))  # in signature order, not request's
    assert (a.tolist(), b.tolist(), b.dtype) == ([[1, 2]], [[10, 20]], np.int64)
    assert model.predict([a, b])[0].tolist() == [[11, 22]]


# -- signatures ----------------------------------------------------------------------


def test_a_signature_may_be_json_text_or_a_file(models: Models, tmp_path: Path) -> None:
    signature = {"inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, 4]}]}
    from_text = load(models.pickle, signature=json.dumps(signature))
    file = tmp_path / "signature.json"
    file.write_text(json.dumps(signature))
    from_file = load(models.pickle, signature=str(file))
    for model in (from_text, from_file):
        assert model.signature.inputs[0].name == "features"
        assert model.output_names == ("predict",)  # outputs still inferred


@pytest.mark.parametrize(
    ("signature", "message"),
    [
        pytest.param({"inputs": []}, "signature.inputs: must be a non-empty list", id="empty"),
        pytest.param(
            {"inputs": [{"name": "x", "datatype": "F32", "shape": [-1]}]},
            "signature.inputs[0].datatype: unknown datatype 'F32'",
            id="datatype",
        ),
        pytest.param(
            {"outputs": [{"name": "y", "datatype": "FP32", "shape": [-2]}]},
            "signature.outputs[0].shape: must be a list of sizes",
            id="shape",
        ),
        pytest.param(
            {"inputs": [{"datatype": "FP32"}]}, "signature.inputs[0].name: must be", id="name"
        ),
        pytest.param("{not json", "signature: not valid JSON", id="bad-json"),
        pytest.param("/no/such/file.json", "signature: cannot read /no/such/file.json", id="file"),
        pytest.param("[1]", "signature: must be an object", id="not-an-object"),
    ],
)
def test_a_bad_signature_fails_the_load_naming_its_field(
    models: Models, signature: Any, message: str
) -> None:
    with pytest.raises(ModelLoadError) as caught:
        load(models.pickle, signature=signature)
    assert message in str(caught.value)


# -- requests against the signature --------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            v2([1, 2, 3], [1, 3]),
            "inputs[0].shape: model input 'input-0' takes shape [-1, 4], got [1, 3]",
            id="feature-count",
        ),
        pytest.param(
            v2([1, 2, 3, 4], [4]),
            "inputs[0].shape: model input 'input-0' takes shape [-1, 4], got [4]",
            id="rank",
        ),
        pytest.param(
            v2(["a", "b", "c", "d"], [1, 4], "BYTES"),
            "inputs[0].datatype: model input 'input-0' takes FP64, got BYTES",
            id="datatype",
        ),
        pytest.param(
            v2([True] * 4, [1, 4], "BOOL"),
            "inputs[0].datatype: model input 'input-0' takes FP64, got BOOL",
            id="bool",
        ),
        pytest.param(
            {
                "inputs": [
                    v2([1] * 4, [1, 4])["inputs"][0],
                    {**v2([1], [1])["inputs"][0], "name": "b"},
                ]
            },
            "inputs: model m takes 1 input, got 2",
            id="two-inputs",
        ),
        pytest.param(
            v2([1.0, float("nan"), 2.0, 3.0], [1, 4]),
            "inputs[0].data: model m does not accept NaN or infinities",
            id="nan-to-a-model-that-refuses-it",
        ),
        pytest.param(
            v2([], [0, 4]), "inputs[0].shape: no rows to predict, got [0, 4]", id="no-rows"
        ),
        pytest.param(
            v2([1] * 4, [1, 4], outputs=[{"name": "proba"}]),
            "outputs[0].name: model m has no output 'proba'; it has predict",
            id="unknown-output",
        ),
    ],
)
def test_requests_that_do_not_fit_the_model_name_their_field(
    models: Models, body: dict[str, Any], message: str
) -> None:
    model = load(models.pickle)
    with pytest.raises(CodecError) as caught:
        model.v2_inputs(codec.decode_request(body))
    assert str(caught.value) == message


def test_an_imputing_pipeline_takes_nan_but_no_infinity(models: Models, tmp_path: Path) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    pipeline = make_pipeline(SimpleImputer(), models.classifier)
    joblib.dump(pipeline.fit(models.x, models.classifier.predict(models.x)), tmp_path / "p.pkl")
    model = load(tmp_path / "p.pkl")
    [rows] = model.v2_inputs(request([5.1, float("nan"), 1.4, 0.2], [1, 4]))
    assert model.predict([rows])[0].tolist() == [0]
    with pytest.raises(CodecError, match="does not accept infinities"):
        model.v1_inputs({"instances": [[5.1, float("inf"), 1.4, 0.2]]})


def test_a_single_input_is_taken_whatever_its_name_and_converted(models: Models) -> None:
    model = load(models.pickle)
    [array] = model.v2_inputs(request([1, 2, 3, 4], [1, 4], "INT32"))
    assert array.dtype == np.float64
    assert array.tolist() == [[1.0, 2.0, 3.0, 4.0]]


def test_multi_input_models_match_inputs_by_name(models: Models) -> None:
    model = load(models.custom, "custom", class_path="doubler:Adder")
    only_a = {"inputs": [{"name": "a", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]}]}
    with pytest.raises(CodecError, match=r"^inputs: missing input 'b'$"):
        model.v2_inputs(codec.decode_request(only_a))
    stray = {"inputs": [{"name": "c", "shape": [1, 2], "datatype": "INT64", "data": [1, 2]}]}
    with pytest.raises(
        CodecError, match=r"^inputs\[0\].name: model m has no input 'c'; it takes a, b"
    ):
        model.v2_inputs(codec.decode_request(stray))
    with pytest.raises(CodecError, match="takes 2 inputs; use the v2 protocol"):
        model.v1_inputs({"instances": [[1, 2]]})


def test_v1_instances_are_checked_against_the_one_input(models: Models) -> None:
    model = load(models.pickle)
    assert model.v1_inputs({"instances": [[1, 2, 3, 4]]})[0].dtype == np.float64
    with pytest.raises(
        CodecError, match=r"^instances: model input 'input-0' takes shape \[-1, 4\]"
    ):
        model.v1_inputs({"instances": [[1, 2, 3]]})


def test_a_fixed_first_dimension_turns_batching_off(models: Models) -> None:
    fixed = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4]}]}
    assert load(models.pickle).batchable
    assert not load(models.pickle, signature=fixed).batchable


# -- failures are reported -----------------------------------------------------------


def corrupt(tmp_path: Path) -> Path:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"this is not a pickle")
    return path


@pytest.mark.parametrize(
    ("setup", "fmt", "class_path", "error"),
    [
        pytest.param(corrupt, "sklearn", None, "is not a pickle or joblib file", id="corrupt-pkl"),
        pytest.param(
            lambda tmp: tmp / "nothing.pkl", "sklearn", None, "does not exist", id="missing"
        ),
        pytest.param(lambda tmp: tmp, "sklearn", None, "no model file in", id="empty-dir"),
        pytest.param(corrupt, "onnx", None, "", id="corrupt-onnx"),
        pytest.param(corrupt, "xgboost", None, "unknown model format 'xgboost'", id="format"),
        pytest.param(lambda tmp: tmp, "custom", None, "needs --class module:Class", id="no-class"),
        pytest.param(lambda tmp: tmp, "custom", "nomodule:X", "ModuleNotFoundError", id="module"),
    ],
)
def test_a_model_that_fails_to_load_is_reported_not_raised(
    tmp_path: Path, setup: Any, fmt: str, class_path: str | None, error: str
) -> None:
    slot = ModelSlot(ModelConfig("m", str(setup(tmp_path)), fmt, class_path=class_path))
    slot.load()  # never raises
    assert slot.state is LoadState.FAILED
    assert slot.state.terminal
    assert slot.model is None
    assert slot.error
    assert error in slot.error


def test_a_custom_load_that_raises_is_reported(models: Models) -> None:
    slot = ModelSlot(ModelConfig("m", str(models.custom), "custom", class_path="doubler:Broken"))
    slot.load()
    assert (slot.state, slot.error) == (LoadState.FAILED, "RuntimeError: weights are missing")


def test_a_slot_that_loads_is_ready(models: Models) -> None:
    slot = ModelSlot(ModelConfig("m", str(models.joblib), "sklearn", version="7"))
    assert slot.state is LoadState.LOADING
    assert not slot.state.terminal
    slot.load()
    assert slot.state is LoadState.READY
    assert slot.model is not None
    assert slot.model.metadata()["versions"] == ["7"]


# -- the direct linear predict ---------------------------------------------------------


def _estimators() -> list[Any]:
    from sklearn.linear_model import (  # type: ignore[import-untyped]
        Lasso,
        LinearRegression,
        LogisticRegression,
        Ridge,
    )
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]
    from sklearn.svm import LinearSVC  # type: ignore[import-untyped]

    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 4))
    three = (x[:, 0] > 0.5).astype(int) + (x[:, 1] > 0).astype(int)
    binary = (x[:, 2] > 0).astype(int)
    sparse = LogisticRegression(max_iter=500).fit(x, three)
    sparse.sparsify()
    return [
        pytest.param(LogisticRegression(max_iter=500).fit(x, three), True, id="logistic-3"),
        pytest.param(LogisticRegression().fit(x, binary), True, id="logistic-binary"),
        pytest.param(
            LogisticRegression().fit(x, np.where(binary, "yes", "no")), True, id="string-labels"
        ),
        pytest.param(LinearSVC().fit(x, three), True, id="linear-svc"),
        pytest.param(LinearRegression().fit(x, x[:, 0]), True, id="regression-1"),
        pytest.param(LinearRegression().fit(x, x[:, :3]), True, id="regression-3"),
        pytest.param(Ridge().fit(x, x[:, 0]), False, id="ridge-own-predict"),
        pytest.param(Lasso().fit(x, x[:, 0]), False, id="lasso-own-predict"),
        pytest.param(
            make_pipeline(StandardScaler(), LogisticRegression()).fit(x, binary),
            False,
            id="pipeline",
        ),
        pytest.param(sparse, False, id="sparse-coef"),
    ]


@pytest.mark.parametrize(("estimator", "direct"), _estimators())
def test_the_direct_linear_predict_is_taken_only_where_it_equals_predict(
    estimator: Any, direct: bool
) -> None:
    from cnai.serving.models import _linear_predict

    fast = _linear_predict(estimator, estimator.predict)
    assert (fast is not None) is direct
    rows = np.random.default_rng(2).normal(scale=3.0, size=(25, 4))
    if fast is not None:
        want, got = estimator.predict(rows), fast(rows)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        # Another dtype or shape goes to the estimator's own predict.
        np.testing.assert_array_equal(
            fast(rows.astype(np.float32)), estimator.predict(rows.astype(np.float32))
        )


def test_a_served_linear_model_answers_as_its_estimator(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 4))
    estimator = LogisticRegression().fit(x, (x[:, 0] > 0).astype(int))
    joblib.dump(estimator, tmp_path / "m.joblib")
    model = load(tmp_path / "m.joblib")
    rows = rng.normal(size=(7, 4))
    (answer,) = model.predict([rows])
    np.testing.assert_array_equal(np.asarray(answer), estimator.predict(rows))
