"""Fixtures of the state tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.server import REPO


@pytest.fixture
def model_dir(tmp_path) -> Path:
    """A folder of its own holding copies of both demo models, as MODEL_DIR."""
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, folder / name)
    return folder
