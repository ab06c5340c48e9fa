"""The plain Sanic server a user would write: same preprocessing and Model code as edgeserve.

Run `python -m benchmarks.sanic_baseline` with MODEL_PATH and PORT set. A plain baseline on
purpose: `request.json`, `base64.b64decode`, the work in the loop's default thread pool,
ONNX Runtime's default threads, one Sanic process, no A/B, metrics, limits or logging.
"""

from __future__ import annotations

import asyncio
import base64
import os
from pathlib import Path

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from edgeserve.inference.model import Model
from edgeserve.inference.preprocess import decode_image, to_tensor

MAX_IMAGE_PIXELS = 25_000_000

app = Sanic("sanic_baseline")


@app.before_server_start
async def load_model(app: Sanic) -> None:
    model = Model.load(Path(os.environ["MODEL_PATH"]))
    model.warm(3)
    app.ctx.model = model


@app.get("/ready")
async def ready(request: Request) -> HTTPResponse:
    return json({"ready": True})


def classify(model: Model, body: dict) -> dict:
    size = model.size_for(body.get("img_size"))
    image = decode_image(base64.b64decode(body["image_b64"]), MAX_IMAGE_PIXELS)
    probabilities = model.run(to_tensor(image, model.meta, size))
    return {
        "model": {"name": model.name, "version": model.version},
        "predictions": [p.to_dict() for p in model.top_k(probabilities[0], body.get("top_k", 5))],
    }


@app.post("/v1/infer")
async def infer(request: Request) -> HTTPResponse:
    loop = asyncio.get_running_loop()
    return json(await loop.run_in_executor(None, classify, request.app.ctx.model, request.json))


def main() -> None:
    app.run(
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        access_log=False,
        motd=False,
        single_process=True,
    )


if __name__ == "__main__":
    main()
