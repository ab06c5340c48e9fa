"""POST /v1/feedback: the true label for an earlier answer, scored against its token."""

from __future__ import annotations

import time
from collections import ChainMap
from collections.abc import Container

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from edgeserve.errors import AlreadyCounted, FeedbackDisabled, InvalidFeedbackToken, InvalidField
from edgeserve.observability import metrics
from edgeserve.server.payload import json_object
from edgeserve.server.runtime import Runtime
from edgeserve.state.schema import InvalidState
from edgeserve.state.store import StoreUnavailable
from edgeserve.traffic.feedback import InvalidToken, SeenTokens, verify
from edgeserve.traffic.paired_feedback import outcome
from edgeserve.variants import CANDIDATE, CURRENT

feedback = Blueprint("feedback")
FEEDBACK_FIELDS = ("feedback_token", "label")
MAX_LABEL_CHARS = 256


def known_labels(runtime: Runtime) -> Container[str]:
    """The labels of the models served here: one dict lookup per model, never a scan."""
    return ChainMap(*(model.meta.label_index for model in runtime.registry.models.values()))


async def stored_tracks(runtime: Runtime, version: str) -> bool:
    """Whether the stored state keeps `version`: a change another worker or instance made,
    which this worker follows within a poll, must not refuse that change's own tokens."""
    try:
        stored = await runtime.sync.read()
    except (StoreUnavailable, InvalidState):
        return False
    return stored is not None and version in metrics.tracked_versions(stored)


@feedback.post("/v1/feedback")
async def post_feedback(request: Request) -> HTTPResponse:
    runtime: Runtime = request.app.ctx.runtime
    secret = runtime.settings.feedback_secret
    if not secret:
        raise FeedbackDisabled("feedback is off on this server: set FEEDBACK_SECRET to turn it on")
    body = json_object(request)
    if set(body) != set(FEEDBACK_FIELDS):
        raise InvalidField(
            'the body must be {"feedback_token": "<from the /v1/infer answer>", '
            '"label": "<the true label>"}',
            code="invalid_feedback",
        )
    label = body["label"]
    if not isinstance(label, str) or not 0 < len(label) <= MAX_LABEL_CHARS:
        raise InvalidField("label must be a non-empty string", code="invalid_feedback")
    now = time.time()
    try:
        answer = verify(secret, body["feedback_token"], now)
    except InvalidToken as error:
        raise InvalidFeedbackToken(str(error)) from None
    if answer.version not in runtime.tracked_versions() and not await stored_tracks(
        runtime, answer.version
    ):
        raise InvalidFeedbackToken(
            f"feedback_token names model version {answer.version[:12]!r}, which is no longer "
            "counted here: feedback is kept for the versions in A and B and the previous A"
        )
    if label not in known_labels(runtime):
        raise InvalidField(
            f"label {label[:64]!r} is not a label of the models served here: "
            "send one of the model's labels (see edgeserve models inspect)",
            code="unknown_label",
        )
    seen: SeenTokens = request.app.ctx.feedback_seen
    if not seen.first_time(answer, now):
        raise AlreadyCounted("this feedback_token was already counted: each answer counts once")
    correct = label == answer.label
    # Credited to the version that answered, whichever slot serves it now.
    metrics.feedback.labels(answer.variant, answer.version, outcome(correct)).inc()
    if answer.variant == CURRENT:
        b = runtime.registry.get(CANDIDATE)
        b_label = await runtime.shadow.answers.take(answer.nonce, b.version if b else None)
        if b_label is not None:
            metrics.feedback_paired.labels(outcome(correct), outcome(b_label == label)).inc()
    request.ctx.variant = answer.variant
    return json(
        {"variant": answer.variant, "version": answer.version, "correct": correct}, status=202
    )
