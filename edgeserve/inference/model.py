"""One loaded ONNX classifier: load, describe, warm, run."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgeserve.errors import EdgeserveError, InferenceError, ModelHazard, ModelLoadError, one_line
from edgeserve.inference.deadline import Deadlines
from edgeserve.inference.metadata import ModelMeta, read_meta, sidecar_path
from edgeserve.inference.session import Runner, RunStopped, RunTiming, SessionRunner
from edgeserve.inference.version import bytes_sha256, version_of

_FLOAT = "tensor(float)"
_ORT_PREFIX = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ")


@dataclass(frozen=True)
class Prediction:
    """One ranked class for one image."""

    index: int
    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """JSON shape used in the /v1/infer answer."""
        return {"index": self.index, "label": self.label, "score": round(self.score, 6)}


class Model:
    """An ONNX Runtime session plus what is needed to feed it and read its answer."""

    def __init__(
        self,
        *,
        path: Path,
        runner: Runner,
        meta: ModelMeta,
        sha256: str,
        num_classes: int,
    ):
        self.path = path
        self.name = path.stem
        self.sha256 = sha256
        """The full version: a sha256 over the bytes and their description (inference.version)."""
        self.version = sha256[:12]
        self.runner = runner
        self.meta = meta
        self.num_classes = num_classes
        self.batch_dynamic = runner.batch_dynamic
        self.isolated = runner.isolated
        """Runs in a process of its own (a candidate): never on the serving process's threads."""

    @property
    def session(self) -> ort.InferenceSession:
        """The in-process session (a model loaded with Model.load)."""
        return self.runner.session  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<Model {self.name} {self.version} classes={self.num_classes}>"

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        intra_op_threads: int = 0,
        expected_sha256: str | None = None,
        hashed: bool = False,
        deadlines: Deadlines | None = None,
    ) -> Model:
        """Load and validate an image classifier; ModelLoadError says why it cannot serve.

        With `expected_sha256` (a full version) a file whose bytes or sidecar changed is
        refused, never served under the version the rollout state gives it; `hashed` says the
        caller has just taken that version of these very files (a read-only copy it kept), so
        it is not taken again. With
        `deadlines` every run is stopped past the timeout."""
        path = Path(path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise ModelLoadError(f"model file {path} {what}: give the path of an .onnx file")
        sha256 = expected_sha256 if hashed and expected_sha256 else file_model_version(path)
        if expected_sha256 is not None and sha256 != expected_sha256:
            raise ModelLoadError(
                f"model file {path} has version {sha256[:12]}, not the {expected_sha256[:12]} "
                "the rollout state names: it or its sidecar changed on disk; load the model "
                "again",
                code="model_changed",
            )

        options = ort.SessionOptions()
        if intra_op_threads > 0:
            options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 4  # ORT errors reach the operator as our one-line JSON logs
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelLoadError(
                f"model file {path} is not a loadable ONNX model ({_ort_reason(exc)}): "
                "check that it is a complete .onnx export"
            ) from None

        num_classes = check_io(path, session)
        meta = read_meta(path, session)
        if num_classes is None:
            num_classes = len(meta.labels)
        runner = SessionRunner(session, deadlines)
        return cls(path=path, runner=runner, meta=meta, sha256=sha256, num_classes=num_classes)

    def describe(self) -> dict[str, str]:
        """Identity of the model for the admin API and answers."""
        return {"path": str(self.path), "name": self.name, "version": self.version}

    def size_for(self, img_size: int | None) -> tuple[int, int]:
        """The (height, width) to feed for a requested img_size; None means the model's own."""
        if img_size is None or (img_size, img_size) == self.meta.input_size:
            return self.meta.input_size
        height, width = self.meta.input_size
        if self.meta.fixed or height != width:
            raise EdgeserveError(
                f"img_size {img_size} is not accepted by model {self.name}: "
                f"it takes {height}x{width} images, omit img_size",
                code="invalid_img_size",
            )
        return (img_size, img_size)

    def input_shape(self, size: tuple[int, int], batch: int = 1) -> tuple[int, int, int, int]:
        """Input tensor shape for a batch of (height, width) images in the model's layout."""
        height, width = size
        if self.meta.layout == "NCHW":
            return (batch, self.meta.channels, height, width)
        return (batch, height, width, self.meta.channels)

    def warm(self, runs: int = 3) -> float:
        """Run a zero image `runs` times so the first request is not slow; total ms."""
        batch = np.zeros(self.input_shape(self.meta.input_size), dtype=np.float32)
        start = time.perf_counter()
        for _ in range(runs):
            self.run(batch)
        return (time.perf_counter() - start) * 1000.0

    def doubts(self) -> list[tuple[str, str]]:
        """(event, one-line message) for what was guessed or looks wrong about this model."""
        found = []
        if not self.meta.described:
            assumed = ", ".join(f"{k}={v}" for k, v in self.meta.assumed().items() if v is not None)
            found.append(
                (
                    "model_preprocessing_assumed",
                    f"model {self.name} describes no preprocessing, defaults assumed: {assumed}; "
                    "describe it in a sidecar next to the model: edgeserve models init MODEL.onnx",
                )
            )
        if self.meta.output == "logits":
            zeros = np.zeros(self.input_shape(self.meta.input_size), dtype=np.float32)
            scores = self.raw_scores(zeros)[0]
            if scores.min() >= 0 and abs(float(scores.sum()) - 1.0) <= 1e-3:
                found.append(
                    (
                        "model_output_looks_like_probabilities",
                        f"model {self.name} is described as giving logits but its scores on the "
                        "warm-up input are >= 0 and sum to 1: if it ends in a softmax, set "
                        '"output": "probabilities" or the scores get a second softmax',
                    )
                )
        return found

    def raw_scores(self, batch: np.ndarray, cpu_timed: bool = False) -> np.ndarray:
        """The model's own output, float32 [N, K], for a preprocessed input batch."""
        return self.raw_scores_timed(batch, cpu_timed)[0]

    def raw_scores_timed(self, batch: np.ndarray, cpu_timed: bool) -> tuple[np.ndarray, RunTiming]:
        """raw_scores, and how long the run took (its CPU time with `cpu_timed`).

        A run that hangs, dies, runs out of memory or answers a non-finite score raises
        ModelHazard: the model is unsafe, whatever the input."""
        try:
            scores, timing = self.runner.run(batch, cpu_timed)
        except RunStopped as stopped:
            raise ModelHazard(
                f"model {self.name} ({self.version}) {stopped.what}",
                code="inference_timeout" if stopped.timed_out else "inference_failed",
            ) from None
        except Exception as exc:
            raise InferenceError(
                f"model {self.name} ({self.version}) failed to run: {_ort_reason(exc)}"
            ) from None
        scores = np.asarray(scores, dtype=np.float32)
        if scores.ndim != 2 or scores.shape[1] != self.num_classes:
            raise InferenceError(
                f"model {self.name} returned shape {list(scores.shape)}, expected "
                f"[N, {self.num_classes}]: its labels do not match its output"
            )
        if not np.isfinite(scores).all():
            raise ModelHazard(
                f"model {self.name} ({self.version}) answered non-finite scores (NaN or inf)"
            )
        return scores, timing

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Class scores, float32 [N, K]: probabilities, or independent sigmoid scores."""
        return self.run_timed(batch, cpu_timed=False)[0]

    def run_timed(self, batch: np.ndarray, cpu_timed: bool) -> tuple[np.ndarray, RunTiming]:
        """run, and how long the session run took (its CPU time with `cpu_timed`)."""
        scores, timing = self.raw_scores_timed(batch, cpu_timed)
        if self.meta.output == "logits":
            return softmax(scores), timing
        if self.meta.output == "sigmoid":
            return sigmoid(scores), timing
        return scores, timing

    def close(self) -> None:
        """Let go of the session (a model in its own process: stop that process)."""
        self.runner.close()

    def top_k(self, probs: np.ndarray, k: int) -> list[Prediction]:
        """The k best classes of one row of scores, best first, ties by ascending index."""
        row = np.asarray(probs).reshape(-1)
        k = min(int(k), row.shape[0])
        if k <= 0:
            return []
        if k < row.shape[0]:
            # argpartition finds the k best in O(K), but which of several equal scores at the
            # cut it keeps is arbitrary: take every score equal to the k-th, then sort
            kth = row[np.argpartition(-row, k - 1)[k - 1]]
            picked = np.arange(row.shape[0]) if np.isnan(kth) else np.flatnonzero(row >= kth)
        else:
            picked = np.arange(k)
        order = picked[np.lexsort((picked, -row[picked]))][:k]  # score desc, then index asc
        labels = self.meta.labels
        return [
            Prediction(
                index=int(i),
                label=labels[i] if i < len(labels) else f"class_{i}",
                score=float(row[i]),
            )
            for i in order
        ]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax that cannot overflow: the row max is subtracted first."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function that cannot overflow: exp(-log(1 + exp(-x)))."""
    return np.exp(-np.logaddexp(0, -logits)).astype(np.float32, copy=False)


def check_io(path: Path, session: ort.InferenceSession) -> int | None:
    """Exactly one 4-D float image input and one [N, K] float output; returns K if fixed.

    The one home of these checks: metadata.build_meta reads the shapes they let through."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        names = [i.name for i in inputs]
        raise ModelLoadError(
            f"model {path.name} has {len(inputs)} inputs {names}: "
            "an image classifier needs exactly one"
        )
    image = inputs[0]
    if image.type != _FLOAT:
        raise ModelLoadError(
            f"model {path.name} input {image.name!r} is {image.type}: only float32 "
            "(tensor(float)) image inputs are supported"
        )
    shape = list(image.shape)
    if len(shape) != 4:
        raise ModelLoadError(
            f"model {path.name} input {image.name!r} has shape {shape}: "
            "it must be a 4-D image tensor, NCHW or NHWC"
        )
    if isinstance(shape[0], int) and shape[0] > 1:
        raise ModelLoadError(
            f"model {path.name} input {image.name!r} has a fixed batch of {shape[0]}: "
            "export it with batch 1 or a dynamic batch dimension"
        )
    if len(outputs) != 1:
        names = [o.name for o in outputs]
        raise ModelLoadError(
            f"model {path.name} has {len(outputs)} outputs {names}: "
            "it must have exactly one [N, K] score output"
        )
    scores = outputs[0]
    if scores.type != _FLOAT:
        raise ModelLoadError(
            f"model {path.name} output {scores.name!r} is {scores.type}: "
            "only float32 (tensor(float)) scores are supported"
        )
    out_shape = list(scores.shape)
    if len(out_shape) != 2:
        raise ModelLoadError(
            f"model {path.name} output {scores.name!r} has shape {out_shape}: "
            "it must be [N, K] class scores"
        )
    classes = out_shape[1]
    if isinstance(classes, int):
        if classes < 2:
            raise ModelLoadError(
                f"model {path.name} outputs {classes} class score: "
                "a classifier needs at least 2 classes"
            )
        return classes
    return None


def file_version(path: Path) -> str:
    """The model's version as shown: changes whenever its bytes or its sidecar do."""
    return file_model_version(path)[:12]


def file_model_version(path: Path) -> str:
    """The full version of the model file at `path` described by the sidecar beside it."""
    return version_of(file_sha256(path), sidecar_path(path))


def file_sha256(path: Path) -> str:
    """The sha256 of the file's bytes, in hex: one half of the model's version."""
    try:
        return bytes_sha256(path)
    except OSError as exc:
        raise ModelLoadError(
            f"model file {path} cannot be read ({exc.strerror or exc}): check its permissions"
        ) from None


def _ort_reason(exc: BaseException) -> str:
    """ORT's message on one line, without its "[ONNXRuntimeError] : 2 : CODE :" prefix."""
    # The prefix is matched on the collapsed text and dropped before the cut, so it costs none
    # of the characters kept.
    text = _ORT_PREFIX.sub("", one_line(exc, limit=None))
    return one_line(text or type(exc).__name__)
