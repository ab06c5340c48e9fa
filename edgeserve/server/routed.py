"""The rollout path every inference route shares (/v1/infer, /v2/models/edgeserve/infer):
admission, the variant, the run, and what follows an answer (metrics, shadow, the guard)."""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sanic import Request

from edgeserve.errors import EdgeserveError, InferenceError, ModelHazard, NotReady, Overloaded
from edgeserve.inference.model import Model
from edgeserve.inference.pipeline import Classified
from edgeserve.observability import metrics
from edgeserve.server.runtime import Runtime
from edgeserve.state.schema import RuntimeState
from edgeserve.traffic.routing import choose_variant, new_client_id, valid_client_id
from edgeserve.variants import CANDIDATE, CURRENT, Variant

Run = Callable[[Model], Awaitable[Classified]]
"""One request's work on the chosen model (it may refuse the input with a 4xx first)."""


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


@dataclass(frozen=True)
class Choice:
    """The variant one request goes to, under the one state it read."""

    state: RuntimeState
    variant: Variant
    model: Model
    model_b: Model | None
    """B while it serves users under `state`, else None."""
    judged: Model | None
    """The B this state puts under the canary guard (None: no guard)."""


def choose(request: Request, runtime: Runtime) -> Choice:
    """Sticky cookie, canary header and weights -> the variant (also set on request.ctx)."""
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
    request.ctx.variant = variant
    judged = model_b if state.canary_enabled else None
    return Choice(state, variant, model, model_b, judged)


async def run_chosen(
    runtime: Runtime, choice: Choice, img_size: int | None, run: Run
) -> Classified:
    """`run` on the chosen model; a failed session run is counted, judged and contained."""
    variant = choice.variant
    try:
        return await run(choice.model)
    except InferenceError as error:
        # Only a failed session run is the model's fault; the guard sees nothing else.
        metrics.inferences.labels(variant, choice.model.version, "error").inc()
        await runtime.canary.observe(choice.judged, variant, img_size or 0, False, 0.0)
        if choice.model_b is not None and variant == CANDIDATE:
            hazard = error if isinstance(error, ModelHazard) else None
            await runtime.canary.contain(choice.model_b, hazard)
        raise
    except Exception as error:
        if not isinstance(error, EdgeserveError) or error.status_code >= 500:
            metrics.inferences.labels(variant, choice.model.version, "error").inc()
        raise


async def after_answer(
    runtime: Runtime,
    choice: Choice,
    result: Classified,
    *,
    img_size: int | None,
    top_k: int,
    started: float,
    trace_id: str,
) -> float:
    """Metrics, B's containment count, shadow and the guard for an answered request; the
    request's total seconds so far. Shadow compares the `top_k` best of each answer."""
    total = time.perf_counter() - started
    variant, model = choice.variant, choice.model
    metrics.inferences.labels(variant, model.version, "ok").inc()
    duration = metrics.inference_duration
    duration.labels(variant, model.version, "decode").observe(result.decode_seconds)
    duration.labels(variant, model.version, "inference").observe(result.inference_seconds)
    duration.labels(variant, model.version, "total").observe(total)
    if variant == CANDIDATE:
        await runtime.canary.contain(model, None)
    # A preprocessed tensor has no image: B, which may preprocess otherwise, is not shadowed.
    if variant == CURRENT and choice.state.shadow_enabled and result.upload is not None:
        shadowed = runtime.registry.get(CANDIDATE)
        runtime.shadow.start(
            shadowed if runtime.canary.shadows(shadowed, choice.state) else None,
            result.upload,
            result.predictions[:top_k],
            top_k,
            trace_id,
            choice.model.version,
        )
    await runtime.canary.observe(choice.judged, variant, img_size or 0, True, result.run_seconds)
    return total
