"""Shared helpers for the deployment tests: repository paths and the pinned CLI tools."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def find_tool(name: str) -> str | None:
    """The tool installed next to this interpreter (the project venv) first, then PATH."""
    beside_python = Path(sys.executable).parent / name
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which(name)


def require_tool(name: str) -> str:
    path = find_tool(name)
    if path is None:
        pytest.fail(
            f"{name} not found next to {sys.executable} or on PATH: "
            "install the dev dependencies (pip install -r requirements-dev.lock)"
        )
    return path


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def k6_bin() -> str:
    return require_tool("k6")


@pytest.fixture(scope="session")
def hadolint_bin() -> str:
    return require_tool("hadolint")
