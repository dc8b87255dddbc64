"""Tensors on the wire: Open Inference Protocol (KServe v2) JSON and KServe v1 <-> numpy.

The model server decodes every request here before a model sees it, so this is where a
client's mistakes become clear 400s: each problem raises :class:`CodecError` with a
message that starts with the field at fault (``inputs[0].shape: [2, 4] needs 8
elements, got 7``).

Decoding is built for the common case, a small numeric tensor: ``np.asarray`` infers
the array from the JSON lists in one C pass, its dtype kind says whether the values fit
the declared datatype, and only when they do not is the data walked in Python to name
the first value at fault. ``data`` may be flat (row-major) or nested; nested data whose
own shape differs from ``shape`` is accepted when the element count agrees, as the
protocol asks only for row-major order.

Values must fit their datatype: integers for INT/UINT (no floats, within range),
numbers for FP (a finite number that overflows FP16 or FP32 is an error, not ``inf``),
JSON booleans for BOOL and strings for BYTES. Numbers in strings (``"1.5"`` for FP32)
are refused, though numpy would parse them. One leniency is kept for speed: a boolean
among numbers counts as 0 or 1, as numpy (and Python) have it; finding it would cost a
Python-level pass over every request's values, and data of booleans alone is refused.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

# The protocol's datatypes. Keep in sync with _FAMILY, which names BOOL and BYTES.
NUMPY_DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
DATATYPES = tuple(NUMPY_DTYPES)

# The family of each datatype (b: booleans, i: integers, f: floats, s: strings), the
# numpy kinds whose values fit a family, and what the family is called in messages.
_FAMILY = {"BOOL": "b", "BYTES": "s"} | {
    name: "i" if name.startswith(("INT", "UINT")) else "f"
    for name in DATATYPES
    if name.startswith(("INT", "UINT", "FP"))
}
_ACCEPTED_KINDS = {"b": "b", "i": "iu", "f": "iuf", "s": "US"}
_NOUN = {"b": "booleans", "i": "integers", "f": "numbers", "s": "strings"}
_MAX_DIMS = 32  # numpy's own limit is 64; no real model input comes near


class CodecError(ValueError):
    """A request the protocol cannot accept; the message names the field at fault."""


@dataclass(frozen=True)
class Tensor:
    """One named input tensor of a request, decoded to an array of its datatype."""

    name: str
    datatype: str
    data: Array  # already of NUMPY_DTYPES[datatype] and of the declared shape
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InferRequest:
    """A decoded v2 inference request."""

    inputs: tuple[Tensor, ...]
    id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()  # the outputs asked for by name; empty: all


# -- v2 requests ---------------------------------------------------------------------


def decode_request(body: Any) -> InferRequest:
    """A parsed JSON body as an :class:`InferRequest`; CodecError when it is not one."""
    if not isinstance(body, dict):
        raise CodecError("request body: must be a JSON object")
    raw_inputs = body.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise CodecError("inputs: must be a non-empty list of tensors")
    inputs = tuple(decode_tensor(raw, f"inputs[{i}]") for i, raw in enumerate(raw_inputs))
    names = [t.name for t in inputs]
    if len(set(names)) != len(names):
        raise CodecError(f"inputs: input names must be unique, got {names}")
    request_id = body.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise CodecError("id: must be a string")
    return InferRequest(
        inputs=inputs,
        id=request_id,
        parameters=_parameters(body.get("parameters"), "parameters"),
        outputs=_requested_outputs(body.get("outputs")),
    )


def decode_tensor(raw: Any, where: str) -> Tensor:
    """One ``{"name", "shape", "datatype", "data", "parameters"?}`` object."""
    if not isinstance(raw, dict):
        raise CodecError(f"{where}: must be an object with name, shape, datatype and data")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise CodecError(f"{where}.name: must be a non-empty string")
    datatype = raw.get("datatype")
    if datatype not in NUMPY_DTYPES:
        raise CodecError(
            f"{where}.datatype: unknown datatype {datatype!r}; use one of {', '.join(DATATYPES)}"
        )
    shape = _shape(raw.get("shape"), f"{where}.shape")
    data = raw.get("data")
    if not isinstance(data, list):
        raise CodecError(f"{where}.data: must be a list (flat in row-major order, or nested)")
    array = to_array(data, datatype, f"{where}.data")
    if array.size != math.prod(shape):
        raise CodecError(
            f"{where}.shape: {list(shape)} needs {math.prod(shape)} elements, got {array.size}"
        )
    return Tensor(
        name,
        datatype,
        array.reshape(shape),
        _parameters(raw.get("parameters"), f"{where}.parameters"),
    )


def _shape(raw: Any, where: str) -> tuple[int, ...]:
    if not isinstance(raw, list):
        raise CodecError(f"{where}: must be a list of dimension sizes")
    if len(raw) > _MAX_DIMS:
        raise CodecError(f"{where}: at most {_MAX_DIMS} dimensions, got {len(raw)}")
    for dim in raw:
        if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
            raise CodecError(f"{where}: dimensions must be integers >= 0, got {raw}")
    return tuple(raw)


def _parameters(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CodecError(f"{where}: must be an object")
    return value


def _requested_outputs(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise CodecError("outputs: must be a list of {name} objects")
    names = []
    for i, item in enumerate(raw):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise CodecError(f"outputs[{i}].name: must be a non-empty string")
        names.append(name)
    return tuple(names)


# -- values -> arrays ----------------------------------------------------------------


def to_array(data: list[Any], datatype: str, where: str) -> Array:
    """JSON values (flat or nested lists) as an array of ``datatype``, keeping their
    nesting as its shape. CodecError names the first value that does not fit."""
    if datatype == "BYTES":
        return _strings(data, where)
    try:
        inferred = np.asarray(data)
        if inferred.size == 0:
            return inferred.astype(NUMPY_DTYPES[datatype])
        return convert(inferred, datatype, where)
    except (CodecError, ValueError, OverflowError) as exc:
        return _slow_path(data, datatype, where, exc)


def _slow_path(data: list[Any], datatype: str, where: str, exc: Exception) -> Array:
    """Name the first value that does not fit; if every value fits, the inference was
    what failed (integers on both sides of 2**63 infer as floats), so convert directly."""
    for path, value in _leaves(data, where):
        problem = _leaf_problem(value, datatype)
        if problem:
            raise CodecError(f"{where}{path}: {problem}") from None
    try:
        return np.array(data, dtype=NUMPY_DTYPES[datatype])
    except ValueError:
        raise CodecError(f"{where}: nested lists must all have the same length") from None
    except (OverflowError, TypeError):
        raise (exc if isinstance(exc, CodecError) else CodecError(f"{where}: {exc}")) from None


def can_convert(source: str, target: str) -> bool:
    """Whether a tensor of datatype ``source`` may feed a model input of ``target``:
    the same family (INT8 into INT64, FP32 into FP64), or integers into floats."""
    have, want = _FAMILY[source], _FAMILY[target]
    return have == want or (have == "i" and want == "f")


def convert(array: Array, datatype: str, where: str) -> Array:
    """``array`` as ``datatype`` when its values fit: same family, or integers into a
    float type; integers within range, floats without overflow."""
    target = NUMPY_DTYPES[datatype]
    if array.dtype == target:
        return array
    family = _FAMILY[datatype]
    kind = array.dtype.kind
    if kind not in _ACCEPTED_KINDS[family]:
        raise CodecError(f"{where}: {datatype} needs {_NOUN[family]}, got {_kind_noun(kind)}")
    if family == "s":
        return array.astype(object)
    if family == "i" and array.size:
        info = np.iinfo(target)
        low, high = int(array.min()), int(array.max())
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            raise CodecError(f"{where}: {_show(bad)} is out of range for {datatype}")
    if family == "f":
        return _to_float(array, target, datatype, where)
    return array.astype(target)


def _to_float(array: Array, target: np.dtype[Any], datatype: str, where: str) -> Array:
    if target.itemsize >= 4 and array.dtype.itemsize <= target.itemsize:
        # Widening cannot overflow, nor can any integer into FP32 or FP64 (2**64 is far
        # below FP32's maximum): skip the error-state switch, which costs more than the cast.
        return array.astype(target)
    try:
        with np.errstate(over="raise"):
            return array.astype(target)
    except FloatingPointError:
        raise CodecError(f"{where}: a value is out of range for {datatype}") from None


def _kind_noun(kind: str) -> str:
    return {
        "b": "booleans",
        "i": "integers",
        "u": "integers",
        "f": "floats",
        "U": "strings",
        "S": "bytes",
    }.get(kind, "mixed or non-scalar values")


def _strings(data: list[Any], where: str) -> Array:
    for path, value in _leaves(data, where):
        if not isinstance(value, str):
            raise CodecError(f"{where}{path}: BYTES needs strings, got {_show(value)}")
    # With dtype=object numpy does not refuse ragged lists: it keeps the odd ones as
    # list elements, which is how they are found.
    array = np.array(data, dtype=object)
    if any(isinstance(value, list) for value in array.flat):
        raise CodecError(f"{where}: nested lists must all have the same length")
    return array


def _leaves(
    data: list[Any], where: str, path: str = "", depth: int = 1
) -> Iterator[tuple[str, Any]]:
    """(index path, value) of each non-list value in nested lists, in row-major order."""
    if depth > _MAX_DIMS:
        raise CodecError(f"{where}{path}: nested deeper than {_MAX_DIMS} levels")
    for i, value in enumerate(data):
        if isinstance(value, list):
            yield from _leaves(value, where, f"{path}[{i}]", depth + 1)
        else:
            yield f"{path}[{i}]", value


def _leaf_problem(value: Any, datatype: str) -> str | None:
    """What is wrong with one JSON value as an element of ``datatype``, if anything."""
    family = _FAMILY[datatype]
    if family == "b":
        return None if isinstance(value, bool) else f"BOOL needs true or false, got {_show(value)}"
    if family == "s":
        return None if isinstance(value, str) else f"BYTES needs strings, got {_show(value)}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{datatype} needs {_NOUN[family]}, got {_show(value)}"
    if family == "i" and isinstance(value, float):
        return f"{datatype} needs integers, got {value!r}"
    dtype = NUMPY_DTYPES[datatype]
    low, high = (np.iinfo(dtype).min, np.iinfo(dtype).max) if family == "i" else _float_range(dtype)
    if isinstance(value, float) and not math.isfinite(value):
        return None  # NaN and infinities are floats of every width
    return None if low <= value <= high else f"{_show(value)} is out of range for {datatype}"


def _float_range(dtype: np.dtype[Any]) -> tuple[float, float]:
    largest = float(np.finfo(dtype).max)
    return -largest, largest


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    return text if len(text) <= 40 else text[:37] + "..."


# -- arrays -> v2 responses ------------------------------------------------------------


# The datatype of each numpy dtype, for the answer to every request: one lookup where the
# loop over NUMPY_DTYPES took 1 us. Keep in sync with NUMPY_DTYPES.
_DATATYPE_OF = {dtype: name for name, dtype in NUMPY_DTYPES.items() if name != "BYTES"}


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The protocol datatype of a numpy dtype; ValueError for one it has none for."""
    kind = dtype.kind
    if kind in "USO":
        return "BYTES"
    known = _DATATYPE_OF.get(dtype)
    if known is not None:
        return known
    for name, candidate in NUMPY_DTYPES.items():  # an equal dtype of another hash
        if candidate == dtype:
            return name
    raise ValueError(f"no protocol datatype holds numpy dtype {dtype}")


def encode_tensor(name: str, array: Array) -> dict[str, Any]:
    """An output tensor as ``{"name", "shape", "datatype", "data"}`` (data flat)."""
    datatype = datatype_of(array.dtype)
    return {
        "name": name,
        "shape": list(array.shape),
        "datatype": datatype,
        "data": _json_values(array.reshape(-1), datatype),
    }


def encode_response(
    model_name: str,
    outputs: Sequence[tuple[str, Array]],
    model_version: str | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    """A v2 inference response; ``model_version`` and ``id`` only when known."""
    response: dict[str, Any] = {"model_name": model_name}
    if model_version is not None:
        response["model_version"] = model_version
    if request_id is not None:
        response["id"] = request_id
    response["outputs"] = [encode_tensor(name, array) for name, array in outputs]
    return response


def _json_values(flat: Array, datatype: str) -> list[Any]:
    values: list[Any] = flat.tolist()
    return [_text(v) for v in values] if datatype == "BYTES" else values


def _text(value: Any) -> str:
    """A BYTES element as JSON text: bytes as UTF-8 (undecodable bytes escaped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return value if isinstance(value, str) else str(value)


# -- KServe v1 -----------------------------------------------------------------------


def decode_v1(body: Any, datatype: str) -> Array:
    """``{"instances": [...]}`` (or ``{"inputs": [...]}``) as one array of ``datatype``,
    each instance a row."""
    if not isinstance(body, dict):
        raise CodecError("request body: must be a JSON object")
    key = "instances" if "instances" in body else "inputs"
    data = body.get(key)
    if not isinstance(data, list) or not data:
        raise CodecError(f'{key}: must be a non-empty list, as in {{"instances": [[1.0, 2.0]]}}')
    return to_array(data, datatype, key)


def encode_v1(array: Array) -> dict[str, Any]:
    """``{"predictions": [...]}``: one entry per row of ``array``."""
    predictions: Any = array.tolist()
    if array.dtype.kind in "SO":
        predictions = _texts(predictions)
    return {"predictions": predictions}


def _texts(values: Any) -> Any:
    if isinstance(values, list):
        return [_texts(v) for v in values]
    return _text(values)
