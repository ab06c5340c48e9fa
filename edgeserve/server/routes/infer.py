"""POST /v1/infer: choose a variant, classify, answer; shadow and canary off the answer's path."""

from __future__ import annotations

import random
import time
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from edgeserve.errors import EdgeserveError, InferenceError, NotReady, Overloaded
from edgeserve.observability import metrics
from edgeserve.server.payload import infer_request
from edgeserve.server.runtime import Runtime
from edgeserve.traffic import feedback as feedback_token
from edgeserve.traffic.routing import choose_variant, new_client_id, valid_client_id

infer = Blueprint("infer")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


@infer.post("/v1/infer")
async def infer_image(request: Request) -> HTTPResponse:
    started = time.perf_counter()
    runtime: Runtime = request.app.ctx.runtime
    # Shed load before parsing: a refused request should cost as little as possible.
    if not runtime.ready:
        raise NotReady("models are still loading: retry when GET /ready answers 200")
    if runtime.inflight >= runtime.settings.max_inflight:
        raise Overloaded(
            f"{runtime.inflight} requests are in progress (MAX_INFLIGHT): retry in a second"
        )
    payload = infer_request(request)
    state = runtime.state
    client_id = None
    if state.sticky_cookie:
        client_id = request.cookies.get(runtime.settings.sticky_cookie_name)
        if not valid_client_id(client_id):
            client_id = request.ctx.new_client_id = new_client_id()
    variant = choose_variant(
        weight_a=state.ab_weight_a,
        weight_b=state.ab_weight_b,
        b_loaded=runtime.b_serves_users(),
        canary_enabled=state.canary_enabled,
        canary_header=request.headers.get("x-canary"),
        client_id=client_id,
        random_bucket=random.random(),
    )
    model = runtime.slots.get(variant)
    assert model is not None  # choose_variant only picks B when it is loaded
    request.ctx.variant = variant
    img_size = model.size_for(payload.img_size)
    runtime.inflight += 1
    metrics.inflight_requests.inc()
    try:
        result = await runtime.classify(model, payload.image, img_size, payload.top_k)
    except InferenceError:
        # Only a failed session run is the model's fault; the guard sees nothing else.
        metrics.inferences.labels(variant, "error").inc()
        await runtime.observe_canary(variant, payload.img_size or 0, False, 0.0)
        raise
    except Exception as error:
        if not isinstance(error, EdgeserveError) or error.status_code >= 500:
            metrics.inferences.labels(variant, "error").inc()
        raise
    finally:
        runtime.inflight -= 1
        metrics.inflight_requests.dec()
    total = time.perf_counter() - started
    metrics.inferences.labels(variant, "ok").inc()
    metrics.inference_duration.labels(variant, "decode").observe(result.decode_seconds)
    metrics.inference_duration.labels(variant, "inference").observe(result.inference_seconds)
    metrics.inference_duration.labels(variant, "total").observe(total)
    trace_id = request.ctx.trace_id
    if variant == "A" and state.shadow_enabled:
        runtime.start_shadow(result.image, result.predictions, payload.top_k, trace_id)
    await runtime.observe_canary(variant, payload.img_size or 0, True, result.run_seconds)
    settings = runtime.settings
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
    if settings.feedback_secret and result.predictions:
        answer["feedback_token"] = feedback_token.issue(
            settings.feedback_secret,
            variant=variant,
            version=model.version,
            label=result.predictions[0].label,
            now=time.time(),
            ttl=settings.feedback_token_ttl_seconds,
        )
    return json(answer, headers={"X-Edgeserve-Variant": variant})
