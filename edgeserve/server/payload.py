"""Parse and validate request bodies: every problem becomes a precise 4xx."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson
from sanic import Request

from edgeserve.errors import BadRequest, InvalidField, UnsupportedMediaType
from edgeserve.inference.preprocess import decode_base64

INFER_FIELDS = ("image_b64", "img_size", "top_k")
# Binary uploads: the raw file is the body, the other fields are query parameters.
UPLOAD_TYPES = ("image/png", "image/jpeg", "application/octet-stream")
UPLOAD_PARAMETERS = ("img_size", "top_k")
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,18}")
MIN_IMG_SIZE = 8
MAX_IMG_SIZE = 2048
MAX_TOP_K = 1000
DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class InferRequest:
    image: bytes
    """The file's bytes, whichever form carried them."""
    img_size: int | None
    top_k: int


def media_type(request: Request) -> str:
    """The Content-Type without its parameters, lower case; "" when absent."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def refuse_encoded(request: Request) -> None:
    """Bodies are read as sent: a compressed one would be taken for garbage, so say why."""
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(
            f"Content-Encoding {encoding!r} is not supported: send the body uncompressed",
            code="unsupported_content_encoding",
        )


def json_object(request: Request, *, required: bool = True) -> dict[str, Any]:
    """The body as a JSON object; an empty body is {} when not required."""
    content_type = request.headers.get("content-type", "")
    body = request.body or b""
    refuse_encoded(request)
    if not body and not required:
        return {}
    if media_type(request) != "application/json":
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
    img_size = _whole_number(data, "img_size", MIN_IMG_SIZE, MAX_IMG_SIZE)
    return InferRequest(
        image=decode_base64(image_b64),
        img_size=img_size,
        top_k=DEFAULT_TOP_K if top_k is None else top_k,
    )


def infer_request(request: Request) -> InferRequest:
    """POST /v1/infer in either form: a JSON body, or the raw file with query parameters."""
    kind = media_type(request)
    if kind in UPLOAD_TYPES:
        return parse_upload(request)
    if kind != "application/json":
        raise UnsupportedMediaType(
            "Content-Type must be application/json (image_b64 in a JSON body), or image/png, "
            "image/jpeg or application/octet-stream (the raw file as the body), "
            f"got {request.headers.get('content-type') or 'none'!r}"
        )
    return parse_infer(json_object(request))


def query_values(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query's parameters, each given once and each one of `allowed`."""
    query = request.get_args(keep_blank_values=True)
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise InvalidField(
            f"unknown query parameter(s) {', '.join(unknown)}: allowed are {', '.join(allowed)}",
            code="unknown_field",
        )
    values: dict[str, str] = {}
    for name, given in query.items():
        if len(given) > 1:
            raise InvalidField(f"{name} is given {len(given)} times: give it once")
        values[name] = given[0]
    return values


def parse_upload(request: Request) -> InferRequest:
    """A binary upload: img_size and top_k come from the query, checked like the JSON fields."""
    refuse_encoded(request)
    values: dict[str, Any] = {
        # A number where the query holds one, so range errors read as they do for JSON.
        name: int(given) if _WHOLE_NUMBER.fullmatch(given) else given
        for name, given in query_values(request, UPLOAD_PARAMETERS).items()
    }
    top_k = _whole_number(values, "top_k", 1, MAX_TOP_K)
    img_size = _whole_number(values, "img_size", MIN_IMG_SIZE, MAX_IMG_SIZE)
    if not request.body:
        raise BadRequest(
            "the body is empty: send the PNG or JPEG file as the request body", code="empty_image"
        )
    return InferRequest(
        image=request.body,
        img_size=img_size,
        top_k=DEFAULT_TOP_K if top_k is None else top_k,
    )
