"""One loaded ONNX classifier: load, describe, warm, run."""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from edgeserve.errors import InferenceError, ModelLoadError
from edgeserve.inference.metadata import ModelMeta, read_meta

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
        session: ort.InferenceSession,
        meta: ModelMeta,
        sha256: str,
        num_classes: int,
    ):
        self.path = path
        self.name = path.stem
        self.sha256 = sha256
        self.version = sha256[:12]
        self.session = session
        self.meta = meta
        self.input_name: str = session.get_inputs()[0].name
        self.output_name: str = session.get_outputs()[0].name
        self.num_classes = num_classes
        self.batch_dynamic = not isinstance(session.get_inputs()[0].shape[0], int)

    def __repr__(self) -> str:
        return f"<Model {self.name} {self.version} classes={self.num_classes}>"

    @classmethod
    def load(
        cls, path: Path, *, intra_op_threads: int = 0, expected_sha256: str | None = None
    ) -> Model:
        """Load and validate an image classifier; ModelLoadError says why it cannot serve.

        With `expected_sha256` a file whose bytes changed is refused, never served under the
        version the rollout state gives it."""
        path = Path(path)
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "does not exist"
            raise ModelLoadError(f"model file {path} {what}: give the path of an .onnx file")
        sha256 = file_sha256(path)
        if expected_sha256 is not None and sha256 != expected_sha256:
            raise ModelLoadError(
                f"model file {path} has version {sha256[:12]}, not the {expected_sha256[:12]} "
                "the rollout state names: it changed on disk; load the model again",
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
                f"model file {path} is not a loadable ONNX model ({_one_line(exc)}): "
                "check that it is a complete .onnx export"
            ) from None

        num_classes = _check_io(path, session)
        meta = read_meta(path, session)
        if num_classes is None:
            num_classes = len(meta.labels)
        return cls(path=path, session=session, meta=meta, sha256=sha256, num_classes=num_classes)

    def describe(self) -> dict[str, str]:
        """Identity of the model for the admin API and answers."""
        return {"path": str(self.path), "name": self.name, "version": self.version}

    def accepts_size(self, img_size: int) -> bool:
        """Whether an img_size x img_size input fits the model's input shape."""
        return self.meta.fixed_size is None or img_size == self.meta.fixed_size

    def input_shape(self, img_size: int, batch: int = 1) -> tuple[int, int, int, int]:
        """Input tensor shape for a batch of img_size images in the model's layout."""
        if self.meta.layout == "NCHW":
            return (batch, 3, img_size, img_size)
        return (batch, img_size, img_size, 3)

    def warm(self, runs: int = 3) -> float:
        """Run a zero image `runs` times so the first request is not slow; total ms."""
        batch = np.zeros(self.input_shape(self.meta.default_img_size), dtype=np.float32)
        start = time.perf_counter()
        for _ in range(runs):
            self.run(batch)
        return (time.perf_counter() - start) * 1000.0

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities, float32 [N, K], for a preprocessed input batch."""
        try:
            (scores,) = self.session.run([self.output_name], {self.input_name: batch})
        except Exception as exc:
            raise InferenceError(
                f"model {self.name} ({self.version}) failed to run: {_one_line(exc)}"
            ) from None
        scores = np.asarray(scores, dtype=np.float32)
        if scores.ndim != 2 or scores.shape[1] != self.num_classes:
            raise InferenceError(
                f"model {self.name} returned shape {list(scores.shape)}, expected "
                f"[N, {self.num_classes}]: its labels do not match its output"
            )
        if self.meta.output == "logits":
            return softmax(scores)
        return scores

    def top_k(self, probs: np.ndarray, k: int) -> list[Prediction]:
        """The k best classes of one row of probabilities, best first (k clipped to K)."""
        row = np.asarray(probs).reshape(-1)
        k = min(int(k), row.shape[0])
        if k <= 0:
            return []
        # argpartition finds the k best in O(K); only those k are then sorted
        picked = np.argpartition(-row, k - 1)[:k] if k < row.shape[0] else np.arange(k)
        order = picked[np.lexsort((picked, -row[picked]))]  # score desc, then index asc
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


def _check_io(path: Path, session: ort.InferenceSession) -> int | None:
    """Exactly one 4-D float image input and one [N, K] float output; returns K if fixed."""
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
    """First 12 hex characters of the file's sha256: changes whenever the bytes do."""
    return file_sha256(path)[:12]


def file_sha256(path: Path) -> str:
    """The sha256 of the file's bytes, in hex: the model's identity in the rollout state."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise ModelLoadError(
            f"model file {path} cannot be read ({exc.strerror or exc}): check its permissions"
        ) from None
    return digest.hexdigest()


def _one_line(exc: BaseException) -> str:
    """ORT's message on one line, without its "[ONNXRuntimeError] : 2 : CODE :" prefix."""
    text = _ORT_PREFIX.sub("", " ".join(str(exc).split())) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
