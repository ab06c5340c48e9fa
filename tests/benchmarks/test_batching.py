"""Dynamic micro-batching gives every request the answer it would get alone."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from benchmarks.payloads import natural_image
from edgeserve.errors import InferenceError
from edgeserve.inference.batching import MicroBatcher
from edgeserve.inference.model import Model
from edgeserve.inference.preprocess import to_tensor
from edgeserve.server.runtime import Runtime
from edgeserve.settings import Settings
from edgeserve.state.backend import open_answer_store
from edgeserve.state.disagreement_store import store_for
from edgeserve.state.file_store import FileStore
from edgeserve.state.model_store import ModelStore
from edgeserve.state.schema import RuntimeState, SlotModel
from tests.support.images import image_bytes

REPO = Path(__file__).resolve().parents[2]
COLOURS = [(255, 0, 0), (0, 200, 0), (10, 10, 240), (250, 250, 0), (0, 0, 0), (255, 140, 0)]


@pytest.fixture(scope="module")
def model() -> Model:
    return Model.load(REPO / "models" / "vA.onnx", intra_op_threads=1)


def tensors(model: Model, count: int) -> list[np.ndarray]:
    size = model.meta.input_size
    return [to_tensor(natural_image(80, 60, seed=i), model.meta, size) for i in range(count)]


def test_batched_rows_equal_unbatched_runs(model):
    inputs = tensors(model, 7)
    alone = [model.run(t)[0] for t in inputs]

    async def batched() -> tuple[list, MicroBatcher]:
        with ThreadPoolExecutor(2) as executor:
            batcher = MicroBatcher(model.run, executor, max_size=4, max_wait_seconds=0.05)
            results = await asyncio.gather(*(batcher.submit(t) for t in inputs))
            return results, batcher

    results, batcher = asyncio.run(batched())
    assert [r.batch_size for r in results] == [4, 4, 4, 4, 3, 3, 3], results
    assert batcher.batches == 2, batcher.batches
    for got, want in zip(results, alone, strict=True):
        np.testing.assert_allclose(got.probabilities, want, rtol=1e-5, atol=1e-7)
        assert int(np.argmax(got.probabilities)) == int(np.argmax(want))


def test_a_lone_request_runs_after_the_max_wait(model):
    async def one() -> float:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(model.run, executor, max_size=8, max_wait_seconds=0.01)
            result = await asyncio.wait_for(batcher.submit(tensors(model, 1)[0]), timeout=5)
            return result.batch_size

    assert asyncio.run(one()) == 1


def test_a_failing_batch_fails_each_of_its_requests():
    def broken(batch: np.ndarray) -> np.ndarray:
        raise InferenceError("model broke")

    async def run() -> list:
        with ThreadPoolExecutor(1) as executor:
            batcher = MicroBatcher(broken, executor, max_size=2, max_wait_seconds=0.01)
            tensor = np.zeros((1, 3, 8, 8), dtype=np.float32)
            return await asyncio.gather(
                batcher.submit(tensor), batcher.submit(tensor), return_exceptions=True
            )

    results = asyncio.run(run())
    assert [type(r) for r in results] == [InferenceError, InferenceError], results


def runtime_with(model: Model, tmp_path: Path, batch_max_size: int) -> Runtime:
    store = FileStore(tmp_path / f"state-{batch_max_size}.json")
    slot = SlotModel(str(model.path), model.sha256)
    state = RuntimeState(1.0, 0.0, False, False, True, models={"A": slot})
    settings = Settings(batch_max_size=batch_max_size, batch_max_wait_ms=20.0)
    disagreements = store_for(settings, store.path)
    answers = open_answer_store(settings, store.path)
    models = ModelStore(tmp_path / "models")
    runtime = Runtime(settings, store, state, models, disagreements, answers)
    runtime.registry.swap("A", model)
    return runtime


def test_runtime_answers_are_the_same_with_batching_on_and_off(model, tmp_path):
    images = [image_bytes(colour, "PNG", 64) for colour in COLOURS]

    async def classify_all(runtime: Runtime) -> list:
        try:
            return await asyncio.gather(
                *(runtime.classify(model, data, (64, 64), 3) for data in images)
            )
        finally:
            await runtime.close()

    alone = asyncio.run(classify_all(runtime_with(model, tmp_path, 1)))
    batched_runtime = runtime_with(model, tmp_path, 4)
    batched = asyncio.run(classify_all(batched_runtime))
    assert batched_runtime.batchers is not None
    (batcher,) = batched_runtime.batchers.batchers.values()
    assert batcher.items == len(images) and batcher.batches < len(images), batcher.batches
    for one, many in zip(alone, batched, strict=True):
        assert [p.label for p in one.predictions] == [p.label for p in many.predictions]
        np.testing.assert_allclose(
            [p.score for p in one.predictions], [p.score for p in many.predictions], rtol=1e-5
        )
