"""The one way tests wait: poll a condition until a deadline, never sleep a fixed time.

`wait_until` blocks; `wait_until_async` yields to the event loop between polls, for tests whose
awaited tasks run on the same loop. Both fail with what they waited for and the last value seen.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Waiting:
    """One wait's deadline and the last value it saw, so a timeout can say both."""

    def __init__(self, what: str, timeout: float, context: Callable[[], str] | None) -> None:
        self.what = what
        self.timeout = timeout
        self.context = context
        self.deadline = time.monotonic() + timeout
        self.last: Any = None

    def over(self) -> bool:
        return time.monotonic() >= self.deadline

    def failure(self) -> AssertionError:
        message = f"waited {self.timeout:g} s for {self.what}; last seen: {self.last!r}"
        if self.context is not None:
            message += f"\n{self.context()}"
        return AssertionError(message)


def wait_until(
    what: str,
    probe: Callable[[], T],
    done: Callable[[T], Any] = bool,
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    context: Callable[[], str] | None = None,
) -> T:
    """Poll `probe()` until `done(value)` holds and answer that value; `probe` is polled once
    more at the deadline, then this fails naming `what`, the last value and `context()`."""
    waiting = Waiting(what, timeout, context)
    while True:
        expired = waiting.over()
        waiting.last = probe()
        if done(waiting.last):
            return waiting.last
        if expired:
            raise waiting.failure()
        time.sleep(interval)


async def wait_until_async(
    what: str,
    probe: Callable[[], T | Awaitable[T]],
    done: Callable[[T], Any] = bool,
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    context: Callable[[], str] | None = None,
) -> T:
    """`wait_until` for a test running on an event loop: `probe` may be a coroutine function,
    and the loop runs other tasks between polls."""
    waiting = Waiting(what, timeout, context)
    while True:
        expired = waiting.over()
        value = probe()
        waiting.last = await value if inspect.isawaitable(value) else value
        if done(waiting.last):
            return waiting.last
        if expired:
            raise waiting.failure()
        await asyncio.sleep(interval)
