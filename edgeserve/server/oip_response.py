"""Build an Open Inference Protocol (v2) answer: the `scores` output as JSON data or binary
tensor data, or its top-k as Triton's classification strings, "score:index:label"."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
from sanic.response import HTTPResponse, raw

from edgeserve.inference.model import Model, Prediction
from edgeserve.server.oip_request import SCORES_OUTPUT, Wanted
from edgeserve.variants import Variant

SERVED_MODEL = "edgeserve"
"""The one model name of /v2: it routes through A/B like /v1/infer."""
_LENGTH = struct.Struct("<I")


def classification(prediction: Prediction) -> str:
    """Triton's classification string: the score as C's %f, the class index, its label."""
    return f"{prediction.score:f}:{prediction.index}:{prediction.label}"


def scores_row(model: Model, predictions: list[Prediction]) -> np.ndarray:
    """The whole score row back from a top-k that holds every class."""
    row = np.zeros(model.num_classes, dtype=np.float32)
    for prediction in predictions:
        row[prediction.index] = prediction.score
    return row


def scores_output(
    model: Model, predictions: list[Prediction], wanted: Wanted
) -> tuple[dict[str, Any], bytes | None]:
    """The `scores` output's JSON, and its bytes when sent as binary tensor data."""
    if wanted.classification:
        picked = predictions[: wanted.classification]
        strings = [classification(p).encode() for p in picked]
        output: dict[str, Any] = {
            "name": SCORES_OUTPUT,
            "datatype": "BYTES",
            "shape": [1, len(picked)],
        }
        if not wanted.binary:
            return output | {"data": [s.decode() for s in strings]}, None
        data = b"".join(_LENGTH.pack(len(s)) + s for s in strings)
    else:
        row = scores_row(model, predictions)
        output = {"name": SCORES_OUTPUT, "datatype": "FP32", "shape": [1, row.size]}
        if not wanted.binary:
            return output | {"data": row.tolist()}, None
        data = row.astype("<f4").tobytes()
    return output | {"parameters": {"binary_data_size": len(data)}}, data


def infer_response(
    request_id: str | None,
    model: Model,
    variant: Variant,
    predictions: list[Prediction],
    wanted: Wanted,
) -> HTTPResponse:
    """model_version is the answering model's version; parameters say its variant and name."""
    output, data = scores_output(model, predictions, wanted)
    answer: dict[str, Any] = {
        "model_name": SERVED_MODEL,
        "model_version": model.version,
        "parameters": {"variant": variant, "model": model.name},
        "outputs": [output],
    }
    if request_id is not None:
        answer["id"] = request_id
    header = orjson.dumps(answer)
    if data is None:
        return raw(header, content_type="application/json")
    return raw(
        header + data,
        content_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
