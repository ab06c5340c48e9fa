"""The in-process limit: decode + preprocess + run + top-k with no server in the way."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeserve.inference.model import Model
from edgeserve.inference.pipeline import Decoding, classify

MAX_IMAGE_PIXELS = 25_000_000
TOP_K = 5
# Full-scale decoding, as the models' reference pipelines do (no JPEG draft mode).
DECODING = Decoding(MAX_IMAGE_PIXELS, jpeg_draft=False)


@dataclass(frozen=True)
class Layout:
    """`callers` threads share one session built with `intra_op` ONNX Runtime threads."""

    callers: int
    intra_op: int

    @property
    def label(self) -> str:
        return f"{self.callers} caller(s) x intra_op {self.intra_op}"


def layouts_for(cores: int) -> list[Layout]:
    """One caller using every core, one caller per core, and the two mixes in between."""
    picks = {Layout(1, 1), Layout(1, cores), Layout(cores, 1), Layout(cores, cores)}
    return sorted(picks, key=lambda layout: (layout.callers, layout.intra_op))


def classify_once(model: Model, data: bytes) -> None:
    classify(model, data, model.meta.input_size, TOP_K, DECODING)


def throughput(
    model: Model, data: bytes, callers: int, seconds: float
) -> tuple[float, float, float]:
    """(requests/s, ms per request per caller, CPU ms per request) of `callers` threads."""
    for _ in range(3):
        classify_once(model, data)
    done = [0] * callers
    deadline = time.perf_counter() + seconds

    def loop(slot: int) -> None:
        while time.perf_counter() < deadline:
            classify_once(model, data)
            done[slot] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(callers)]
    cpu_before = time.process_time()
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_before
    total = max(1, sum(done))
    return sum(done) / elapsed, elapsed * callers / total * 1000.0, cpu / total * 1000.0


def measure_layouts(
    models: dict[int, Model], data: bytes, layouts: list[Layout], seconds: float
) -> dict[str, dict[str, Any]]:
    """Requests/s of each layout; `models` maps intra-op threads to a loaded session."""
    measured = {}
    for layout in layouts:
        rps, ms, cpu_ms = throughput(models[layout.intra_op], data, layout.callers, seconds)
        measured[layout.label] = {
            "callers": layout.callers,
            "intra_op": layout.intra_op,
            "rps": round(rps, 1),
            "ms_per_request": round(ms, 3),
            "cpu_ms_per_request": round(cpu_ms, 3),
        }
    return measured


def load_sessions(model_path: Path, layouts: list[Layout]) -> dict[int, Model]:
    """One session per intra-op thread count the layouts need."""
    return {
        intra: Model.load(model_path, intra_op_threads=intra)
        for intra in sorted({layout.intra_op for layout in layouts})
    }


def best(measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The limit: the fastest layout, with every layout's figures."""
    label, entry = max(measured.items(), key=lambda item: item[1]["rps"])
    return {
        "rps": entry["rps"],
        "cpu_ms_per_request": entry.get("cpu_ms_per_request"),
        "best_layout": label,
        "layouts": measured,
    }


def measure_limit(
    model_path: Path, payloads: dict[str, bytes], layouts: list[Layout], seconds: float
) -> dict[str, dict[str, Any]]:
    """Per payload: every layout's requests/s and the best one (the limit)."""
    models = load_sessions(model_path, layouts)
    return {
        name: best(measure_layouts(models, data, layouts, seconds))
        for name, data in payloads.items()
    }
