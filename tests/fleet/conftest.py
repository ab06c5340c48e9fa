"""A real redis-server for the store and fleet tests: one shared, or one per test to kill."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis import RedisServer, running_redis


@pytest.fixture(scope="session")
def shared_redis() -> Iterator[RedisServer]:
    """For tests that only read and write: each uses its own key."""
    with running_redis() as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """For tests that kill or restart Redis."""
    with running_redis() as server:
        yield server
