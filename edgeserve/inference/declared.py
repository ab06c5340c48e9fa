"""What a model file says about itself, read without running it (no ONNX Runtime session).

The main process checks the start pair this way before any worker admits a model: it must
not load a candidate into itself (containment), and a refused pair must never be seeded into
the state store, where it would outlive the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeserve.inference.description.sources import read_sidecar
from edgeserve.inference.description.vocabulary import META_KEYS
from edgeserve.inference.metadata import ModelMeta, build_meta, sidecar_path


def declared_meta(path: Path) -> ModelMeta | None:
    """The description the server builds for the model at `path` (sidecar over the model's
    metadata, labels defaulting from the output shape), or None when the file cannot tell:
    loading it then reports why, in the words a load uses."""
    import onnx  # only when a pair is checked: 0.2 s, and nothing else at start needs it

    sidecar = sidecar_path(path)
    try:
        proto = onnx.load(str(path), load_external_data=False)
        initialised = {tensor.name for tensor in proto.graph.initializer}
        inputs = [value for value in proto.graph.input if value.name not in initialised]
        embedded = {p.key: p.value for p in proto.metadata_props if p.key in META_KEYS}
        return build_meta(
            read_sidecar(sidecar),
            _shape(inputs[0]),
            _shape(proto.graph.output[0]),
            model=path.name,
            embedded=embedded,
            sidecar_name=sidecar.name,
        )
    except Exception:  # any file the load itself will refuse, with a better message
        return None


def _shape(value: Any) -> list[int | str | None]:
    """A tensor's dimensions as ONNX Runtime reports them: a size, a symbol, or None."""
    return [
        dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None)
        for dim in value.type.tensor_type.shape.dim
    ]
