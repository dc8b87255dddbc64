"""The Open Inference Protocol and KServe v1 codecs: every datatype, flat and nested data,
and an error naming its field for each way a request can be wrong."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from cnai.serving import codec
from cnai.serving.codec import CodecError


def tensor(data: Any, shape: list[int], datatype: str, name: str = "x") -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


@pytest.mark.parametrize(
    ("datatype", "data", "dtype"),
    [
        pytest.param("BOOL", [True, False, True, False], np.bool_, id="bool"),
        pytest.param("UINT8", [0, 1, 254, 255], np.uint8, id="uint8"),
        pytest.param("UINT16", [0, 1, 2, 65535], np.uint16, id="uint16"),
        pytest.param("UINT32", [0, 1, 2, 2**32 - 1], np.uint32, id="uint32"),
        pytest.param("UINT64", [0, 1, 2**63, 2**64 - 1], np.uint64, id="uint64-above-int64"),
        pytest.param("INT8", [-128, -1, 0, 127], np.int8, id="int8"),
        pytest.param("INT16", [-32768, 0, 1, 32767], np.int16, id="int16"),
        pytest.param("INT32", [-(2**31), 0, 1, 2**31 - 1], np.int32, id="int32"),
        pytest.param("INT64", [-(2**63), 0, 1, 2**63 - 1], np.int64, id="int64"),
        pytest.param("FP16", [0.5, -1.0, 2, 65504.0], np.float16, id="fp16-ints-too"),
        pytest.param("FP32", [0.5, -1.5, 3, 1e38], np.float32, id="fp32"),
        pytest.param("FP64", [0.1, -1e300, 3, 2.5], np.float64, id="fp64"),
        pytest.param("BYTES", ["a", "", "héllo", "d"], object, id="bytes-as-strings"),
    ],
)
def test_every_datatype_decodes_flat_and_nested_alike(
    datatype: str, data: list[Any], dtype: Any
) -> None:
    flat = codec.decode_tensor(tensor(data, [2, 2], datatype), "inputs[0]")
    nested = codec.decode_tensor(tensor([data[:2], data[2:]], [2, 2], datatype), "inputs[0]")
    expected = np.array(data, dtype=dtype).reshape(2, 2).tolist()
    for decoded in (flat, nested):
        assert decoded.data.dtype == np.dtype(dtype)
        assert decoded.data.tolist() == expected


def test_nested_data_of_another_shape_is_taken_in_row_major_order() -> None:
    decoded = codec.decode_tensor(tensor([[1, 2, 3], [4, 5, 6]], [3, 2], "INT32"), "inputs[0]")
    assert decoded.data.tolist() == [[1, 2], [3, 4], [5, 6]]


@pytest.mark.parametrize(
    ("shape", "datatype"),
    [
        pytest.param([0, 4], "FP32", id="no-rows"),
        pytest.param([0], "BOOL", id="empty-bool"),
        pytest.param([2, 0], "BYTES", id="empty-bytes"),
    ],
)
def test_empty_tensors(shape: list[int], datatype: str) -> None:
    data: list[Any] = [[], []] if shape == [2, 0] else []
    decoded = codec.decode_tensor(tensor(data, shape, datatype), "inputs[0]")
    assert decoded.data.shape == tuple(shape)
    assert decoded.data.dtype == codec.NUMPY_DTYPES[datatype]


def test_a_full_request_keeps_id_parameters_and_requested_outputs() -> None:
    request = codec.decode_request(
        {
            "id": "r-1",
            "parameters": {"trace": True},
            "inputs": [
                {**tensor([1.0, 2.0], [1, 2], "FP32", "a"), "parameters": {"p": 1}},
                tensor(["x"], [1], "BYTES", "b"),
            ],
            "outputs": [{"name": "predict"}, {"name": "proba", "parameters": {}}],
        }
    )
    assert request.id == "r-1"
    assert request.parameters == {"trace": True}
    assert [t.name for t in request.inputs] == ["a", "b"]
    assert request.inputs[0].parameters == {"p": 1}
    assert request.outputs == ("predict", "proba")


BAD_TENSORS = [
    pytest.param(
        tensor([1, 2, 3, 4, 5, 6, 7], [2, 4], "FP32"),
        "inputs[0].shape: [2, 4] needs 8 elements, got 7",
        id="too-few-elements",
    ),
    pytest.param(
        tensor([[1, 2], [3, 4]], [5], "FP32"),
        "inputs[0].shape: [5] needs 5 elements, got 4",
        id="nested-count-differs",
    ),
    pytest.param(
        tensor([1.0, "a"], [2], "FP32"), "inputs[0].data[1]: FP32 needs numbers, got 'a'", id="str"
    ),
    pytest.param(
        tensor(["1.5"], [1], "FP32"),
        "inputs[0].data[0]: FP32 needs numbers, got '1.5'",
        id="number-in-a-string",
    ),
    pytest.param(
        tensor([[1.0, 2.0], [3.0, None]], [2, 2], "FP64"),
        "inputs[0].data[1][1]: FP64 needs numbers, got null",
        id="null-nested",
    ),
    pytest.param(
        tensor([True, False], [2], "FP32"),
        "inputs[0].data[0]: FP32 needs numbers, got true",
        id="bools-as-float",
    ),
    pytest.param(
        tensor([1, 2.5], [2], "INT32"),
        "inputs[0].data[1]: INT32 needs integers, got 2.5",
        id="float-in-int",
    ),
    pytest.param(
        tensor([1, 300], [2], "UINT8"),
        "inputs[0].data[1]: 300 is out of range for UINT8",
        id="uint8-overflow",
    ),
    pytest.param(
        tensor([-1], [1], "UINT32"),
        "inputs[0].data[0]: -1 is out of range for UINT32",
        id="negative-unsigned",
    ),
    pytest.param(
        tensor([2**63], [1], "INT64"),
        "inputs[0].data[0]: 9223372036854775808 is out of range for INT64",
        id="int64-overflow",
    ),
    pytest.param(
        tensor([1, 70000.0], [2], "FP16"),
        "inputs[0].data[1]: 70000.0 is out of range for FP16",
        id="fp16-overflow",
    ),
    pytest.param(
        tensor([1e39], [1], "FP32"),
        "inputs[0].data[0]: 1e+39 is out of range for FP32",
        id="fp32-overflow",
    ),
    pytest.param(
        tensor([True, 1], [2], "BOOL"),
        "inputs[0].data[1]: BOOL needs true or false, got 1",
        id="int-in-bool",
    ),
    pytest.param(
        tensor(["a", 2], [2], "BYTES"),
        "inputs[0].data[1]: BYTES needs strings, got 2",
        id="int-in-bytes",
    ),
    pytest.param(
        tensor([[1, 2], [3]], [3], "FP32"),
        "inputs[0].data: nested lists must all have the same length",
        id="ragged",
    ),
    pytest.param(
        tensor([["a"], ["b", "c"]], [3], "BYTES"),
        "inputs[0].data: nested lists must all have the same length",
        id="ragged-bytes",
    ),
    pytest.param(
        tensor([{"a": 1}], [1], "FP32"),
        "inputs[0].data[0]: FP32 needs numbers, got dict",
        id="object-element",
    ),
    pytest.param(
        tensor([1.0], [1], "FP8"), "inputs[0].datatype: unknown datatype 'FP8'", id="datatype"
    ),
    pytest.param(
        tensor([1.0], [1], "fp32"), "inputs[0].datatype: unknown datatype 'fp32'", id="lower-case"
    ),
    pytest.param(
        tensor([1.0], [-1], "FP32"), "inputs[0].shape: dimensions must be integers >= 0", id="neg"
    ),
    pytest.param(
        tensor([1.0], [1.0], "FP32"), "inputs[0].shape: dimensions must be integers", id="float"
    ),
    pytest.param(tensor([1.0], "1", "FP32"), "inputs[0].shape: must be a list", id="shape-str"),
    pytest.param(tensor(1.0, [1], "FP32"), "inputs[0].data: must be a list", id="scalar-data"),
    pytest.param(
        {"shape": [1], "datatype": "FP32", "data": [1]}, "inputs[0].name:", id="missing-name"
    ),
    pytest.param({"name": "x", "shape": [1], "data": [1]}, "inputs[0].datatype:", id="no-dtype"),
    pytest.param({"name": "x", "datatype": "FP32", "data": [1]}, "inputs[0].shape:", id="no-shape"),
    pytest.param({"name": "x", "shape": [1], "datatype": "FP32"}, "inputs[0].data:", id="no-data"),
    pytest.param(
        {**tensor([1], [1], "INT8"), "parameters": [1]},
        "inputs[0].parameters: must be an object",
        id="parameters",
    ),
    pytest.param([1, 2], "inputs[0]: must be an object", id="not-an-object"),
]


@pytest.mark.parametrize(("raw", "message"), BAD_TENSORS)
def test_each_bad_tensor_names_its_field(raw: Any, message: str) -> None:
    with pytest.raises(CodecError) as caught:
        codec.decode_request({"inputs": [raw]})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param([], "request body: must be a JSON object", id="list-body"),
        pytest.param({}, "inputs: must be a non-empty list", id="no-inputs"),
        pytest.param({"inputs": []}, "inputs: must be a non-empty list", id="empty-inputs"),
        pytest.param({"inputs": {"a": 1}}, "inputs: must be a non-empty list", id="inputs-dict"),
        pytest.param(
            {"inputs": [tensor([1], [1], "INT8"), tensor([2], [1], "INT8")]},
            "inputs: input names must be unique",
            id="duplicate-names",
        ),
        pytest.param(
            {"id": 5, "inputs": [tensor([1], [1], "INT8")]}, "id: must be a string", id="id"
        ),
        pytest.param(
            {"parameters": "x", "inputs": [tensor([1], [1], "INT8")]},
            "parameters: must be an object",
            id="parameters",
        ),
        pytest.param(
            {"outputs": [{"nom": "y"}], "inputs": [tensor([1], [1], "INT8")]},
            "outputs[0].name: must be a non-empty string",
            id="output-without-name",
        ),
        pytest.param(
            {"outputs": "y", "inputs": [tensor([1], [1], "INT8")]},
            "outputs: must be a list",
            id="outputs-str",
        ),
        pytest.param(
            {"inputs": [tensor([1], [1], "INT8"), tensor([1], [2], "INT8", "y")]},
            "inputs[1].shape: [2] needs 2 elements, got 1",
            id="second-input-indexed",
        ),
    ],
)
def test_each_bad_request_names_its_field(body: Any, message: str) -> None:
    with pytest.raises(CodecError, match=r"^" + message.replace("[", r"\[").replace("]", r"\]")):
        codec.decode_request(body)


def test_data_nested_too_deep_is_refused() -> None:
    deep: Any = [1.0]
    for _ in range(40):
        deep = [deep]
    with pytest.raises(CodecError, match="nested deeper than 32 levels"):
        codec.decode_tensor(tensor(deep, [1], "BYTES"), "inputs[0]")


@pytest.mark.parametrize(
    ("source", "target", "ok"),
    [
        pytest.param("FP32", "FP64", True, id="float-widens"),
        pytest.param("FP64", "FP32", True, id="float-narrows"),
        pytest.param("INT8", "FP32", True, id="int-to-float"),
        pytest.param("UINT64", "INT8", True, id="int-family"),
        pytest.param("FP32", "INT64", False, id="float-to-int"),
        pytest.param("BOOL", "FP32", False, id="bool-to-float"),
        pytest.param("BYTES", "FP32", False, id="bytes-to-float"),
        pytest.param("FP32", "BYTES", False, id="float-to-bytes"),
    ],
)
def test_which_datatypes_may_feed_which(source: str, target: str, ok: bool) -> None:
    assert codec.can_convert(source, target) is ok


def test_convert_checks_the_range_of_the_target() -> None:
    assert codec.convert(np.array([1, 2], dtype=np.int64), "INT8", "x").dtype == np.int8
    with pytest.raises(CodecError, match=r"^x: 1000 is out of range for INT8"):
        codec.convert(np.array([1, 1000]), "INT8", "x")
    with pytest.raises(CodecError, match=r"^x: a value is out of range for FP16"):
        codec.convert(np.array([1e10]), "FP16", "x")


# -- responses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "datatype", "data"),
    [
        pytest.param(np.array([[True, False]]), "BOOL", [True, False], id="bool"),
        pytest.param(np.array([[1, 2], [3, 4]], dtype=np.uint16), "UINT16", [1, 2, 3, 4], id="u16"),
        pytest.param(np.array([-1], dtype=np.int8), "INT8", [-1], id="int8"),
        pytest.param(np.array([0.5], dtype=np.float16), "FP16", [0.5], id="fp16"),
        pytest.param(np.array([0.25], dtype=np.float32), "FP32", [0.25], id="fp32"),
        pytest.param(np.array(["a", "bc"]), "BYTES", ["a", "bc"], id="unicode"),
        pytest.param(np.array([b"a", b"\xff"], dtype=object), "BYTES", ["a", "\\xff"], id="bytes"),
    ],
)
def test_outputs_encode_flat_with_their_shape_and_datatype(
    array: np.ndarray[Any, Any], datatype: str, data: list[Any]
) -> None:
    encoded = codec.encode_tensor("y", array)
    assert encoded == {"name": "y", "shape": list(array.shape), "datatype": datatype, "data": data}


def test_an_output_without_a_protocol_datatype_is_refused() -> None:
    with pytest.raises(ValueError, match="no protocol datatype"):
        codec.encode_tensor("y", np.array([1 + 2j]))


def test_the_response_carries_version_and_id_only_when_known() -> None:
    outputs = [("y", np.array([1], dtype=np.int64))]
    assert set(codec.encode_response("m", outputs)) == {"model_name", "outputs"}
    full = codec.encode_response("m", outputs, model_version="3", request_id="r")
    assert full["model_version"] == "3"
    assert full["id"] == "r"


# -- v1 ------------------------------------------------------------------------------


def test_v1_instances_become_rows() -> None:
    array = codec.decode_v1({"instances": [[1, 2], [3, 4.5]]}, "FP32")
    assert array.dtype == np.float32
    assert array.tolist() == [[1.0, 2.0], [3.0, 4.5]]
    assert codec.decode_v1({"inputs": [[1, 2]]}, "INT64").tolist() == [[1, 2]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param({"instances": []}, "instances: must be a non-empty list", id="empty"),
        pytest.param({"rows": [[1]]}, "inputs: must be a non-empty list", id="no-instances"),
        pytest.param({"instances": {"a": 1}}, "instances: must be a non-empty list", id="dict"),
        pytest.param({"instances": [[1, "a"]]}, "instances[0][1]: FP64 needs numbers", id="str"),
        pytest.param({"instances": [[1], [1, 2]]}, "instances: nested lists", id="ragged"),
        pytest.param(["a"], "request body: must be a JSON object", id="list-body"),
    ],
)
def test_v1_errors_name_their_field(body: Any, message: str) -> None:
    with pytest.raises(CodecError) as caught:
        codec.decode_v1(body, "FP64")
    assert str(caught.value).startswith(message)


def test_v1_predictions_are_one_entry_per_row() -> None:
    assert codec.encode_v1(np.array([[0.5, 0.5], [1.0, 0.0]])) == {
        "predictions": [[0.5, 0.5], [1.0, 0.0]]
    }
    assert codec.encode_v1(np.array([b"x", "y"], dtype=object)) == {"predictions": ["x", "y"]}
