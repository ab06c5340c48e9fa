"""Where a hot load may read from: a name inside MODEL_DIR, resolved without surprises."""

from __future__ import annotations

import os
from pathlib import Path

from edgeserve.errors import ModelLoadError

MAX_PATH_CHARS = 1024
MAX_NAME_BYTES = 255  # NAME_MAX on Linux, macOS and Windows


def resolve_in_model_dir(model_dir: Path, requested: str) -> Path:
    """The real path of `requested` (relative names are taken inside `model_dir`).

    Every way a path can fail to resolve (NUL byte, over-long name, symlink loop) is a 422
    the caller can fix, and a path that leads outside `model_dir` is refused."""
    if "\0" in requested:
        raise ModelLoadError(
            "the model path has a NUL byte: give the file name of a model in MODEL_DIR"
        )
    if len(requested) > MAX_PATH_CHARS or any(
        len(os.fsencode(part)) > MAX_NAME_BYTES for part in Path(requested).parts
    ):
        raise ModelLoadError(
            f"the model path is longer than the file system allows ({MAX_NAME_BYTES} bytes "
            f"a name, {MAX_PATH_CHARS} characters in all): give a shorter file name"
        )
    root = model_dir.resolve()
    candidate = Path(requested)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError) as error:  # RuntimeError: a symlink loop (Python < 3.13)
        raise ModelLoadError(
            f"the model path {requested} cannot be resolved ({error}): "
            "check for a symlink loop and give a real model file"
        ) from None
    if not resolved.is_relative_to(root):
        raise ModelLoadError(
            f"{requested} is outside the models folder {root}: "
            "copy the model there (or set MODEL_DIR) and load it by name",
            code="path_not_allowed",
        )
    return resolved
