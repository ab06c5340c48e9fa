"""Parsed observability assets shared by the asset and promtool tests."""

from __future__ import annotations

from typing import Any

import pytest

from .assets import COMPOSE_PATH, PROMETHEUS_CONFIG_PATH, load_yaml


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    return load_yaml(COMPOSE_PATH)


@pytest.fixture(scope="session")
def prometheus_config() -> dict[str, Any]:
    return load_yaml(PROMETHEUS_CONFIG_PATH)
