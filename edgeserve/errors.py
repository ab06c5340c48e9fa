"""Errors a client or operator sees: each has an HTTP status and a snake_case code."""

from __future__ import annotations


class EdgeserveError(Exception):
    """Base of every expected failure; the server turns it into the JSON error envelope."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status_code is not None:
            self.status_code = status_code


class BadRequest(EdgeserveError):
    """The request itself is malformed (JSON, fields, base64)."""

    status_code = 400
    code = "bad_request"


class ImageError(EdgeserveError):
    """The bytes are not an image we can classify (format, truncation, pixel cap)."""

    status_code = 422
    code = "invalid_image"


class ModelLoadError(EdgeserveError):
    """A model file cannot be loaded or does not look like an image classifier."""

    status_code = 422
    code = "model_load_failed"


class InferenceError(EdgeserveError):
    """ONNX Runtime failed while running a model."""

    status_code = 500
    code = "inference_failed"
