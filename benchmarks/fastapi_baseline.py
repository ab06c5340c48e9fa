"""The FastAPI + uvicorn server a user would write: same preprocessing and Model code.

Run `python -m benchmarks.fastapi_baseline` with MODEL_PATH and PORT set. It is a plain
baseline on purpose: a sync endpoint (FastAPI runs it in its thread pool), a pydantic body,
ONNX Runtime's default threads, one uvicorn worker, no A/B, metrics or rate limit.
"""

from __future__ import annotations

import base64
import os
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from edgeserve.inference.model import Model
from edgeserve.inference.preprocess import decode_image, to_tensor

MAX_IMAGE_PIXELS = 25_000_000
models: dict[str, Model] = {}


class InferBody(BaseModel):
    image_b64: str
    img_size: int | None = None
    top_k: int = 5


@asynccontextmanager
async def lifespan(app: FastAPI):
    model = Model.load(Path(os.environ["MODEL_PATH"]))
    model.warm(3)
    models["default"] = model
    yield


app = FastAPI(lifespan=lifespan)


@app.get("/ready")
def ready() -> dict[str, bool]:
    return {"ready": "default" in models}


@app.post("/v1/infer")
def infer(body: InferBody) -> dict:
    model = models["default"]
    size = model.size_for(body.img_size)
    image = decode_image(base64.b64decode(body.image_b64), MAX_IMAGE_PIXELS)
    probabilities = model.run(to_tensor(image, model.meta, size))
    return {
        "model": {"name": model.name, "version": model.version},
        "predictions": [p.to_dict() for p in model.top_k(probabilities[0], body.top_k)],
    }


def main() -> None:
    uvicorn.run(
        app,
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "8000")),
        log_level=os.environ.get("LOG_LEVEL", "warning"),
        access_log=False,
    )


if __name__ == "__main__":
    main()
