"""The two places a model description is read from: the sidecar JSON next to the model and
the model's own ONNX metadata_props.

Both readers return raw key -> value dicts holding only known keys, unvalidated. Only a
sidecar that cannot be read, is not a JSON object or has unknown keys raises ModelLoadError;
a model without metadata reads as {}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgeserve.errors import ModelLoadError
from edgeserve.inference.description.vocabulary import META_KEYS


def embedded_meta(session: Any) -> dict[str, Any]:
    """The model's metadata_props that we read; a model without any is fine."""
    try:
        props = dict(session.get_modelmeta().custom_metadata_map or {})
    except Exception:  # an exporter that wrote no metadata at all
        return {}
    return {key: value for key, value in props.items() if key in META_KEYS}


def read_sidecar(sidecar: Path) -> dict[str, Any]:
    """The sidecar's keys; keys starting with "_" are comments and ignored."""
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(
            f"sidecar {sidecar} is not readable JSON ({reason}): fix or delete it"
        ) from None
    if not isinstance(data, dict):
        raise ModelLoadError(
            f"sidecar {sidecar} must hold a JSON object, got {type(data).__name__}"
        )
    data = {key: value for key, value in data.items() if not key.startswith("_")}
    unknown = sorted(set(data) - set(META_KEYS))
    if unknown:
        raise ModelLoadError(
            f"sidecar {sidecar} has unknown keys {unknown}: allowed are {list(META_KEYS)}"
        )
    return data
