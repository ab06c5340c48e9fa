"""Parse an Open Inference Protocol (v2) infer request: JSON tensors, or the binary tensor data
extension (a JSON header of Inference-Header-Content-Length bytes, then the tensors' bytes).

One model, one input: `image` (BYTES, one encoded PNG or JPEG: base64 in JSON, raw bytes in
binary) or `input` (FP32 or UINT8, the model's own input tensor); one output, `scores`.
Every problem is a 4xx naming what to send instead."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from sanic import Request

from edgeserve.errors import BadRequest, InvalidTensor
from edgeserve.inference.preprocess import decode_base64
from edgeserve.inference.tensor_input import TENSOR_TYPES
from edgeserve.server.payload import MAX_TOP_K, refuse_encoded

IMAGE_INPUT = "image"
TENSOR_INPUT = "input"
SCORES_OUTPUT = "scores"
HEADER_LENGTH = "inference-header-content-length"
MAX_DIMENSIONS = 8
_WIRE = {"FP32": np.dtype("<f4"), "UINT8": np.dtype("u1")}
_LENGTH = struct.Struct("<I")  # BYTES elements in binary: a 4-byte little-endian length each


@dataclass(frozen=True)
class Tensor:
    datatype: str
    shape: list[int]
    values: np.ndarray | None
    """FP32 or UINT8 values, flat."""
    images: list[bytes]
    """BYTES elements: encoded image files."""


@dataclass(frozen=True)
class Wanted:
    """How the client wants `scores` back."""

    binary: bool
    classification: int
    """k > 0: the top-k as "score:index:label" strings (Triton's classification extension)."""


@dataclass(frozen=True)
class OipRequest:
    id: str | None
    tensor: Tensor
    wanted: Wanted


def split_body(request: Request) -> tuple[bytes, bytes]:
    """(JSON header, binary tensor data): all JSON unless Inference-Header-Content-Length."""
    refuse_encoded(request)
    body = request.body or b""
    given = request.headers.get(HEADER_LENGTH)
    if given is None:
        return body, b""
    length = int(given) if given.strip().isdigit() else -1
    if not 0 <= length <= len(body):
        raise BadRequest(
            f"Inference-Header-Content-Length {given!r} must be a whole number from 0 to the "
            f"body's {len(body)} bytes: the length of the JSON header",
            code="invalid_binary_data",
        )
    return body[:length], body[length:]


def parse_infer(request: Request) -> OipRequest:
    header, binary = split_body(request)
    try:
        data = orjson.loads(header)
    except orjson.JSONDecodeError as error:
        raise BadRequest(
            f"the inference request is not valid JSON: {error}", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise BadRequest(
            f"the inference request must be a JSON object, got a JSON {type(data).__name__}",
            code="invalid_json",
        )
    request_id = data.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidTensor(f"id must be a string, got {request_id!r}")
    parameters = _object(data.get("parameters"), "parameters")
    inputs = data.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1:
        raise InvalidTensor(
            f"inputs must be a list of exactly one tensor: {IMAGE_INPUT!r} (BYTES) "
            f"or {TENSOR_INPUT!r} (FP32 or UINT8)"
        )
    tensor, rest = _tensor(inputs[0], binary)
    if rest:
        raise BadRequest(
            f"{len(rest)} bytes of binary data follow the inputs' binary_data_size: "
            "send only the inputs' bytes after the JSON header",
            code="invalid_binary_data",
        )
    binary_default = parameters.get("binary_data_output", False) is True
    return OipRequest(request_id, tensor, _wanted(data.get("outputs"), binary_default))


def _object(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidTensor(f"{what} must be a JSON object, got {value!r}")
    return value


def _tensor(given: Any, binary: bytes) -> tuple[Tensor, bytes]:
    """The input tensor, and the binary data its binary_data_size did not take."""
    if not isinstance(given, dict):
        raise InvalidTensor(f"an input must be a JSON object, got {given!r}")
    name, datatype, shape = given.get("name"), given.get("datatype"), given.get("shape")
    allowed = ("BYTES",) if name == IMAGE_INPUT else TENSOR_TYPES
    if name not in (IMAGE_INPUT, TENSOR_INPUT):
        raise InvalidTensor(
            f"unknown input {name!r}: send {IMAGE_INPUT!r} (BYTES, an encoded PNG or JPEG) "
            f"or {TENSOR_INPUT!r} (FP32 or UINT8, the model's input tensor)"
        )
    if datatype not in allowed:
        raise InvalidTensor(
            f"input {name!r} takes datatype {' or '.join(allowed)}, got {datatype!r}"
        )
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= MAX_DIMENSIONS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidTensor(
            f"input {name!r} shape must be a list of 1 to {MAX_DIMENSIONS} whole numbers "
            f"of 0 or more, got {shape!r}"
        )
    count = math.prod(shape)
    size = _object(given.get("parameters"), f"input {name!r} parameters").get("binary_data_size")
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= len(binary):
            raise BadRequest(
                f"input {name!r} binary_data_size {size!r} must be a whole number from 0 to "
                f"the {len(binary)} bytes after the JSON header",
                code="invalid_binary_data",
            )
        return _from_binary(name, datatype, shape, count, binary[:size]), binary[size:]
    if "data" not in given:
        raise InvalidTensor(f"input {name!r} has no data: give data, or binary_data_size")
    return _from_json(name, datatype, shape, count, given["data"]), binary


def _from_json(name: str, datatype: str, shape: list[int], count: int, data: Any) -> Tensor:
    if datatype == "BYTES":
        flat = data if isinstance(data, list) else [data]
        if count != 1 or len(flat) != 1 or not isinstance(flat[0], str):
            raise InvalidTensor(
                f'input {name!r} takes one image: shape [1] and data ["<base64 PNG or JPEG>"]'
            )
        return Tensor(datatype, shape, None, [decode_base64(flat[0])])
    try:
        values = np.asarray(data).reshape(-1)
    except (ValueError, TypeError):
        values = np.asarray([None])  # ragged lists: refused below like any other non-number
    kinds = "iu" if datatype == "UINT8" else "iuf"
    if values.size and values.dtype.kind not in kinds:
        raise InvalidTensor(f"input {name!r} data must be {datatype} numbers, flat or nested")
    if datatype == "UINT8" and values.size and not 0 <= values.min() <= values.max() <= 255:
        raise InvalidTensor(f"input {name!r} UINT8 data must be whole numbers from 0 to 255")
    _check_count(name, shape, count, values.size)
    return Tensor(datatype, shape, values.astype(_WIRE[datatype]), [])


def _from_binary(name: str, datatype: str, shape: list[int], count: int, raw: bytes) -> Tensor:
    if datatype == "BYTES":
        if len(raw) < _LENGTH.size or _LENGTH.unpack_from(raw)[0] > len(raw) - _LENGTH.size:
            raise BadRequest(
                f"input {name!r} BYTES data is cut short: each element is a 4-byte "
                "little-endian length, then that many bytes",
                code="invalid_binary_data",
            )
        end = _LENGTH.size + _LENGTH.unpack_from(raw)[0]
        # Only the first element is read: a second one is refused, never walked through.
        if count != 1 or end != len(raw):
            raise InvalidTensor(f"input {name!r} takes one image: shape [1], one BYTES element")
        return Tensor(datatype, shape, None, [raw[_LENGTH.size : end]])
    wire = _WIRE[datatype]
    if len(raw) != count * wire.itemsize:
        raise BadRequest(
            f"input {name!r} binary_data_size is {len(raw)} bytes, but shape {shape} of "
            f"{datatype} takes {count * wire.itemsize}",
            code="invalid_binary_data",
        )
    return Tensor(datatype, shape, np.frombuffer(raw, dtype=wire), [])


def _check_count(name: str, shape: list[int], count: int, given: int) -> None:
    if given != count:
        raise InvalidTensor(f"input {name!r} has {given} values, but shape {shape} holds {count}")


def _wanted(outputs: Any, binary_default: bool) -> Wanted:
    if outputs is None:
        return Wanted(binary_default, 0)
    if not isinstance(outputs, list) or len(outputs) > 1:
        raise InvalidTensor(f"outputs must be a list of at most one output, {SCORES_OUTPUT!r}")
    if not outputs:
        return Wanted(binary_default, 0)
    output = outputs[0]
    if not isinstance(output, dict) or output.get("name") != SCORES_OUTPUT:
        raise InvalidTensor(f"unknown output {output!r}: the model has one, {SCORES_OUTPUT!r}")
    parameters = _object(output.get("parameters"), f"output {SCORES_OUTPUT!r} parameters")
    binary = parameters.get("binary_data", binary_default)
    k = parameters.get("classification", 0)
    if not isinstance(binary, bool):
        raise InvalidTensor(f"binary_data must be true or false, got {binary!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_TOP_K:
        raise InvalidTensor(
            f"classification must be a whole number from 0 to {MAX_TOP_K}, got {k!r}"
        )
    return Wanted(binary, k)
