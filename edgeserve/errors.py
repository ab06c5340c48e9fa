"""Errors a client or operator sees: one catalogue of codes, each with exactly one HTTP status.

The runbook's error table (docs/operations.md) lists the same codes; a test keeps them equal.
"""

from __future__ import annotations

from typing import ClassVar

# code -> HTTP status. Sanic's own errors map onto the generic codes through SANIC_CODES.
CODES: dict[str, int] = {
    # 400: the request itself is malformed
    "bad_request": 400,
    "invalid_json": 400,
    "invalid_base64": 400,
    "empty_image": 400,
    "invalid_request_target": 400,
    "invalid_feedback_token": 400,
    "invalid_binary_data": 400,
    # 401 / 403: admin and metrics access
    "unauthorized": 401,
    "admin_disabled": 403,
    "client_certificate_required": 403,
    "feedback_disabled": 403,
    # 404 / 405: no such path or method
    "not_found": 404,
    "unknown_model": 404,
    "disagreement_not_found": 404,
    "method_not_allowed": 405,
    # 408: the client was too slow
    "request_timeout": 408,
    # 409: the state does not allow it
    "no_model_b": 409,
    "no_previous_a": 409,
    "feedback_already_counted": 409,
    # 413 / 414 / 431: too large
    "payload_too_large": 413,
    "uri_too_long": 414,
    "headers_too_large": 431,
    # 415: a body we cannot read
    "unsupported_media_type": 415,
    "unsupported_content_encoding": 415,
    "range_not_satisfiable": 416,
    "expectation_failed": 417,
    # 422: well-formed but wrong
    "missing_field": 422,
    "unknown_field": 422,
    "invalid_field": 422,
    "invalid_img_size": 422,
    "invalid_tensor": 422,
    "not_an_image": 422,
    "unsupported_image_format": 422,
    "truncated_image": 422,
    "image_too_large": 422,
    "image_metadata_too_large": 422,
    "invalid_config": 422,
    "model_load_failed": 422,
    "path_not_allowed": 422,
    "model_changed": 422,
    "model_missing": 422,
    "model_hash_mismatch": 422,
    "model_unsigned": 422,
    "model_signature_invalid": 422,
    "labels_mismatch": 422,
    "model_verification_failed": 422,
    "model_unsafe": 422,
    "unknown_label": 422,
    "invalid_feedback": 422,
    # 429: slow down
    "rate_limited": 429,
    "admin_locked_out": 429,
    # 499: the client went away before the answer (counted, never sent)
    "client_closed_request": 499,
    # 5xx: the server's fault or state
    "inference_failed": 500,
    "internal_error": 500,
    "not_ready": 503,
    "missing_workers": 503,
    "overloaded": 503,
    "inference_timeout": 503,
    "state_unavailable": 503,
    "service_unavailable": 503,
    "insufficient_storage": 507,
}

# Statuses Sanic raises itself -> our code for them.
SANIC_CODES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    417: "expectation_failed",
    431: "headers_too_large",
    500: "internal_error",
    503: "service_unavailable",
}


def status_of(code: str) -> int:
    """The one HTTP status of a catalogued code."""
    return CODES[code]


def one_line(error: BaseException | str, *, limit: int | None = 300) -> str:
    """A message on one line, for a log field or an answer.

    Every run of whitespace (line breaks included) becomes one space; an exception without a
    message is named by its type; a text longer than `limit` keeps `limit` characters, the
    last three being "..." (None: never cut)."""
    text = " ".join(str(error).split())
    if not text and isinstance(error, BaseException):
        text = type(error).__name__
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


class EdgeserveError(Exception):
    """Base of every expected failure; the server turns it into the JSON error envelope.

    A class (or a raise, with `code=`) names a catalogued code, and the status is always that
    code's one status in CODES: no class sets a status of its own (a test checks both).
    Every subclass lives in this module, so this file is the whole list of what can fail.
    """

    code: str = "bad_request"
    headers: ClassVar[dict[str, str]] = {}

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def status_code(self) -> int:
        return status_of(self.code)


# The request


class BadRequest(EdgeserveError):
    """The request itself is malformed (JSON, fields, base64)."""

    code = "bad_request"


class InvalidField(EdgeserveError):
    """A well-formed body whose field (or query parameter) is missing, repeated or wrong."""

    code = "invalid_field"


class InvalidTensor(EdgeserveError):
    """An inference protocol tensor whose name, datatype, shape or data the model cannot take."""

    code = "invalid_tensor"


class UnknownModel(EdgeserveError):
    """An inference protocol path naming a model this server does not serve."""

    code = "unknown_model"


class UnsupportedMediaType(EdgeserveError):
    """A Content-Type or Content-Encoding the endpoint does not read."""

    code = "unsupported_media_type"


class Unauthorized(EdgeserveError):
    """A missing or wrong bearer token (admin API, /metrics)."""

    code = "unauthorized"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": "Bearer"}


class ClientCertificateRequired(EdgeserveError):
    """An admin request on a connection without a client certificate (TLS_CLIENT_CA_FILE)."""

    code = "client_certificate_required"


class AdminDisabled(EdgeserveError):
    """The admin API is off: ADMIN_TOKEN is not set."""

    code = "admin_disabled"


class AdminLockedOut(EdgeserveError):
    """Too many wrong admin tokens from one client address: it must wait Retry-After seconds."""

    code = "admin_locked_out"

    def __init__(self, message: str, *, retry_after: str = "1"):
        super().__init__(message)
        self.headers = {"Retry-After": retry_after}  # this address's own wait


class DisagreementNotFound(EdgeserveError):
    """An id no captured disagreement has (never captured, or evicted by the bounds)."""

    code = "disagreement_not_found"


# Images and models


class ImageError(EdgeserveError):
    """The bytes are not an image we can classify (format, truncation, pixel cap)."""

    code = "not_an_image"


class ModelLoadError(EdgeserveError):
    """A model file cannot be loaded or does not look like an image classifier."""

    code = "model_load_failed"


class VerificationFailed(EdgeserveError):
    """A model failed on recent real inputs, so it does not serve."""

    code = "model_verification_failed"


class InferenceError(EdgeserveError):
    """ONNX Runtime failed while running a model."""

    code = "inference_failed"


class ModelHazard(InferenceError):
    """A run that shows the model unsafe to serve: it died, hung past INFERENCE_TIMEOUT_MS, ran
    out of MODEL_MEMORY_LIMIT_MB or answered non-finite scores. Always the model's fault."""


class ModelUnsafe(EdgeserveError):
    """A model that, being admitted, died, hung, ran out of memory or answered non-finite
    scores: it does not serve."""

    code = "model_unsafe"


# Feedback


class FeedbackDisabled(EdgeserveError):
    """Feedback is off: FEEDBACK_SECRET is not set."""

    code = "feedback_disabled"


class InvalidFeedbackToken(EdgeserveError):
    """A feedback token that is forged, altered or expired."""

    code = "invalid_feedback_token"


class AlreadyCounted(EdgeserveError):
    """A feedback token whose answer was already scored."""

    code = "feedback_already_counted"


# The server's state


class NotReady(EdgeserveError):
    """The models are still loading."""

    code = "not_ready"


class MissingWorkers(EdgeserveError):
    """Workers kept dying and were not replaced: the instance runs short, or not at all."""

    code = "missing_workers"


class Overloaded(EdgeserveError):
    """More requests (or connections) are in progress than this worker takes."""

    code = "overloaded"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "1"}


class NoModelB(EdgeserveError):
    """Promote was asked with no model in slot B."""

    code = "no_model_b"


class NoPreviousA(EdgeserveError):
    """Rollback was asked with no previous A recorded (no promote yet)."""

    code = "no_previous_a"


class StateUnavailable(EdgeserveError):
    """The change could not be persisted, so nothing changed live (or, when its write went
    unanswered and could not be read back, the message says the outcome is unknown)."""

    code = "state_unavailable"


class InsufficientStorage(EdgeserveError):
    """The state folder has no room for a kept copy of a model, so it was not loaded."""

    code = "insufficient_storage"
