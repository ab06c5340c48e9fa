"""Parse and validate request bodies: every problem becomes a precise 4xx."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sanic import Request

from edgeserve.errors import BadRequest, EdgeserveError

INFER_FIELDS = ("image_b64", "img_size", "top_k")
MIN_IMG_SIZE = 8
MAX_IMG_SIZE = 2048
MAX_TOP_K = 1000
DEFAULT_TOP_K = 5


class UnsupportedMediaType(EdgeserveError):
    code = "unsupported_media_type"


class InvalidField(EdgeserveError):
    code = "invalid_field"


@dataclass(frozen=True)
class InferRequest:
    image_b64: str
    img_size: int | None
    top_k: int


def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; an empty body is {} when not required."""
    content_type = request.headers.get("content-type", "")
    body = request.body or b""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported: send the body uncompressed",
            code="unsupported_content_encoding",
        )
    if not body and not required:
        return {}
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType(
            f"Content-Type must be application/json, got {content_type or 'none'!r}"
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadRequest(f"the body is not valid JSON: {error}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise BadRequest(
            f"the body must be a JSON object, got a JSON {type(data).__name__}",
            code="invalid_json",
        )
    return data


def _whole_number(data: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidField(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def parse_infer(data: dict[str, Any]) -> InferRequest:
    unknown = sorted(set(data) - set(INFER_FIELDS))
    if unknown:
        raise InvalidField(
            f"unknown field(s) {', '.join(unknown)}: allowed are {', '.join(INFER_FIELDS)}",
            code="unknown_field",
        )
    if "image_b64" not in data:
        raise InvalidField("image_b64 is required: a base64 PNG or JPEG", code="missing_field")
    image_b64 = data["image_b64"]
    if not isinstance(image_b64, str):
        raise InvalidField(
            f"image_b64 must be a base64 string, got a JSON {type(image_b64).__name__}"
        )
    top_k = _whole_number(data, "top_k", 1, MAX_TOP_K)
    return InferRequest(
        image_b64=image_b64,
        img_size=_whole_number(data, "img_size", MIN_IMG_SIZE, MAX_IMG_SIZE),
        top_k=DEFAULT_TOP_K if top_k is None else top_k,
    )
