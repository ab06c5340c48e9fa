"""POST /v1/infer: choose a variant, classify, answer; shadow and canary off the answer's path."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from edgeserve.errors import EdgeserveError, InferenceError, ModelHazard, NotReady, Overloaded
from edgeserve.observability import metrics
from edgeserve.server.payload import infer_request
from edgeserve.server.runtime import Runtime
from edgeserve.traffic import feedback as feedback_token
from edgeserve.traffic.routing import choose_variant, new_client_id, valid_client_id
from edgeserve.variants import CANDIDATE, CURRENT

infer = Blueprint("infer")


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


@contextmanager
def admitted(runtime: Runtime) -> Iterator[None]:
    """One request in progress; shed before parsing, so a refused request costs little."""
    if not runtime.ready:
        raise NotReady("models are still loading: retry when GET /ready answers 200")
    if runtime.inflight >= runtime.settings.max_inflight:
        raise Overloaded(
            f"{runtime.inflight} requests are in progress (MAX_INFLIGHT): retry in a second"
        )
    runtime.inflight += 1
    metrics.inflight_requests.inc()
    try:
        yield
    finally:
        runtime.inflight -= 1
        metrics.inflight_requests.dec()


@infer.post("/v1/infer")
async def infer_image(request: Request) -> HTTPResponse:
    started = time.perf_counter()
    runtime: Runtime = request.app.ctx.runtime
    with admitted(runtime):
        payload = infer_request(request)
        state = runtime.state  # one read: the whole request follows one generation
        client_id = None
        if state.sticky_cookie:
            client_id = request.cookies.get(runtime.settings.sticky_cookie_name)
            if not valid_client_id(client_id):
                client_id = request.ctx.new_client_id = new_client_id()
        model_b = runtime.serving_b(state)
        variant = choose_variant(
            weights=state.weights,
            b_loaded=model_b is not None,
            canary_enabled=state.canary_enabled,
            canary_header=request.headers.get("x-canary"),
            client_id=client_id,
            random_bucket=random.random(),
        )
        model = model_b if variant == CANDIDATE else runtime.registry.get(CURRENT)
        assert model is not None  # A is always loaded once ready
        judged = model_b if state.canary_enabled else None
        request.ctx.variant = variant
        size = model.size_for(payload.img_size)
        try:
            result = await runtime.classify(model, payload.image, size, payload.top_k)
        except InferenceError as error:
            # Only a failed session run is the model's fault; the guard sees nothing else.
            metrics.inferences.labels(variant, "error").inc()
            await runtime.canary.observe(judged, variant, payload.img_size or 0, False, 0.0)
            if model_b is not None and variant == CANDIDATE:
                hazard = error if isinstance(error, ModelHazard) else None
                await runtime.canary.contain(model_b, hazard)
            raise
        except Exception as error:
            if not isinstance(error, EdgeserveError) or error.status_code >= 500:
                metrics.inferences.labels(variant, "error").inc()
            raise
    total = time.perf_counter() - started
    metrics.inferences.labels(variant, "ok").inc()
    metrics.inference_duration.labels(variant, "decode").observe(result.decode_seconds)
    metrics.inference_duration.labels(variant, "inference").observe(result.inference_seconds)
    metrics.inference_duration.labels(variant, "total").observe(total)
    trace_id = request.ctx.trace_id
    if variant == CANDIDATE:
        await runtime.canary.contain(model, None)
    if variant == CURRENT and state.shadow_enabled:
        shadowed = runtime.registry.get(CANDIDATE)
        runtime.shadow.start(
            shadowed if runtime.canary.shadows(shadowed, state) else None,
            result.image,
            result.predictions,
            payload.top_k,
            trace_id,
            model.version,
        )
    await runtime.canary.observe(judged, variant, payload.img_size or 0, True, result.run_seconds)
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
