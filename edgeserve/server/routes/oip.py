"""Open Inference Protocol v2 REST (KServe, Triton, MLServer clients) beside /v1.

One model, `edgeserve`, routed through A/B, sticky assignment, shadow and the canary guard by
the same path as /v1/infer; errors are {"error": "..."} (server/errors.py)."""

from __future__ import annotations

import asyncio
import time

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from edgeserve import __version__
from edgeserve.errors import NotReady, UnknownModel
from edgeserve.inference.model import Model
from edgeserve.inference.pipeline import Classified
from edgeserve.inference.tensor_input import classify_tensor, input_shape, model_input
from edgeserve.server.oip_request import IMAGE_INPUT, SCORES_OUTPUT, TENSOR_INPUT, parse_infer
from edgeserve.server.oip_response import SERVED_MODEL, infer_response
from edgeserve.server.payload import DEFAULT_TOP_K
from edgeserve.server.routed import admitted, after_answer, choose, run_chosen
from edgeserve.server.runtime import Runtime
from edgeserve.server.watchdog import missing_workers
from edgeserve.variants import CANDIDATE, CURRENT

oip = Blueprint("oip")
EXTENSIONS = ["binary_tensor_data", "classification"]


def served(name: str) -> None:
    if name != SERVED_MODEL:
        raise UnknownModel(f"no model {name!r}: this server serves one model, {SERVED_MODEL!r}")


def serving_a(runtime: Runtime) -> Model:
    model = runtime.registry.get(CURRENT) if runtime.ready else None
    if model is None:
        raise NotReady("models are still loading: retry when GET /v2/health/ready answers 200")
    return model


@oip.get("/v2")
async def server_metadata(request: Request) -> HTTPResponse:
    return json({"name": SERVED_MODEL, "version": __version__, "extensions": EXTENSIONS})


@oip.get("/v2/health/live")
async def live(request: Request) -> HTTPResponse:
    return json({"live": True})


@oip.get("/v2/health/ready")
async def ready(request: Request) -> HTTPResponse:
    loaded = request.app.ctx.runtime.ready and not missing_workers()
    return json({"ready": loaded}, status=200 if loaded else 503)


@oip.get("/v2/models/<name:str>")
async def model_metadata(request: Request, name: str) -> HTTPResponse:
    """A's input and output; B, when loaded, is listed among the versions."""
    served(name)
    runtime: Runtime = request.app.ctx.runtime
    model = serving_a(runtime)
    b = runtime.registry.get(CANDIDATE)
    versions = [model.version] + ([b.version] if b is not None else [])
    return json(
        {
            "name": SERVED_MODEL,
            "versions": versions,
            "platform": "onnxruntime_onnx",
            "inputs": [
                {"name": TENSOR_INPUT, "datatype": "FP32", "shape": input_shape(model)},
                {"name": IMAGE_INPUT, "datatype": "BYTES", "shape": [1]},
            ],
            "outputs": [
                {"name": SCORES_OUTPUT, "datatype": "FP32", "shape": [1, model.num_classes]}
            ],
        }
    )


@oip.get("/v2/models/<name:str>/ready")
async def model_ready(request: Request, name: str) -> HTTPResponse:
    served(name)
    loaded = request.app.ctx.runtime.ready
    return json({"name": SERVED_MODEL, "ready": loaded}, status=200 if loaded else 503)


@oip.post("/v2/models/<name:str>/infer")
async def infer(request: Request, name: str) -> HTTPResponse:
    started = time.perf_counter()
    served(name)
    runtime: Runtime = request.app.ctx.runtime
    with admitted(runtime):
        asked = parse_infer(request)
        tensor = asked.tensor
        choice = choose(request, runtime)

        async def run(model: Model) -> Classified:
            # The classification extension needs its k best; the scores output the whole row.
            ranked = asked.wanted.classification or model.num_classes
            if tensor.images:
                size = model.size_for(None)
                return await runtime.classify(model, tensor.images[0], size, ranked)
            assert tensor.values is not None
            values = tensor.values

            def check_and_run() -> Classified:  # the tensor maths too, off the event loop
                batch = model_input(model, tensor.datatype, tensor.shape, values)
                return classify_tensor(model, batch, ranked, runtime.cpu_timed)

            executor = runtime.executor_for(model)
            return await asyncio.get_running_loop().run_in_executor(executor, check_and_run)

        result = await run_chosen(runtime, choice, None, run)
    await after_answer(
        runtime,
        choice,
        result,
        img_size=None,
        top_k=asked.wanted.classification or DEFAULT_TOP_K,
        started=started,
        trace_id=request.ctx.trace_id,
    )
    return infer_response(asked.id, choice.model, choice.variant, result.predictions, asked.wanted)
