"""POST /v1/infer: choose a variant, classify, answer; shadow and canary off the answer's path."""

from __future__ import annotations

import time
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from edgeserve.inference.model import Model
from edgeserve.inference.pipeline import Classified
from edgeserve.server.payload import infer_request
from edgeserve.server.routed import admitted, after_answer, choose, run_chosen
from edgeserve.server.runtime import Runtime
from edgeserve.traffic import feedback as feedback_token

infer = Blueprint("infer")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


@infer.post("/v1/infer")
async def infer_image(request: Request) -> HTTPResponse:
    started = time.perf_counter()
    runtime: Runtime = request.app.ctx.runtime
    with admitted(runtime):
        payload = infer_request(request)
        choice = choose(request, runtime)

        async def classify(model: Model) -> Classified:
            size = model.size_for(payload.img_size)
            return await runtime.classify(model, payload.image, size, payload.top_k)

        result = await run_chosen(runtime, choice, payload.img_size, classify)
    trace_id = request.ctx.trace_id
    settings = runtime.settings
    nonce = feedback_token.new_nonce() if settings.feedback_secret else None
    total = await after_answer(
        runtime,
        choice,
        result,
        img_size=payload.img_size,
        top_k=payload.top_k,
        started=started,
        trace_id=trace_id,
        feedback_nonce=nonce,
    )
    variant, model = choice.variant, choice.model
    answer: dict[str, Any] = {
        "variant": variant,
        "model": {"name": model.name, "version": model.version},
        "predictions": [p.to_dict() for p in result.predictions],
        "timings_ms": {
            "decode": _ms(result.decode_seconds),
            "inference": _ms(result.inference_seconds),
            "total": _ms(total),
        },
        "trace_id": trace_id,
    }
    if nonce is not None and result.predictions:
        answer["feedback_token"] = feedback_token.issue(
            settings.feedback_secret,
            variant=variant,
            version=model.version,
            label=result.predictions[0].label,
            now=time.time(),
            ttl=settings.feedback_token_ttl_seconds,
            nonce=nonce,
        )
    return json(answer, headers={"X-Edgeserve-Variant": variant})
