from __future__ import annotations

import pytest

from tests.support.server import running_server


@pytest.fixture(scope="session")
def server():
    """Default settings: all traffic to A, B loaded, admin on, no rate limit."""
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def b_server():
    """All traffic to B."""
    with running_server(AB_WEIGHT_A="0", AB_WEIGHT_B="1") as server:
        yield server
