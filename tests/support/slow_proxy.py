"""A TCP proxy in front of a real redis-server that holds back chosen replies (no tests here).

Commands pass at once, so Redis runs them on time; only the reply to a command that `slows`
picks is held for `delay` seconds. That is the fault a client cannot tell from a lost write:
its timeout fires after the command was sent and carried out. redis-py sends one command and
reads its reply before the next on a connection, so a reply follows the command before it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

CHUNK = 65536


@dataclass
class SlowProxy:
    """Listens on 127.0.0.1:`port` and forwards to 127.0.0.1:`target_port`."""

    target_port: int
    delay: float
    slows: Callable[[bytes], bool] = lambda command: True
    port: int = 0
    held: int = 0
    """Replies held back so far: a test can check the fault really happened."""
    _loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.new_event_loop)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def _listen(self, started: threading.Event) -> None:
        server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        started.set()
        async with server:
            await server.serve_forever()

    async def _connect(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter):
        try:
            redis_in, redis_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            client_out.close()
            return
        last_command_slow = [False]
        pumps = [
            asyncio.ensure_future(self._commands(client_in, redis_out, last_command_slow)),
            asyncio.ensure_future(self._replies(redis_in, client_out, last_command_slow)),
        ]
        # Either side closing ends both: a client that gave up closes its socket to Redis too.
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for pump in pumps:
            pump.cancel()
        for writer in (client_out, redis_out):
            writer.close()

    async def _commands(self, source, sink, last_command_slow: list[bool]) -> None:
        while data := await source.read(CHUNK):
            last_command_slow[0] = self.slows(data)
            sink.write(data)
            await sink.drain()

    async def _replies(self, source, sink, last_command_slow: list[bool]) -> None:
        while data := await source.read(CHUNK):
            if last_command_slow[0]:
                self.held += 1
                await asyncio.sleep(self.delay)
            sink.write(data)
            await sink.drain()


@contextmanager
def slow_proxy(
    target_port: int, delay: float, slows: Callable[[bytes], bool] = lambda command: True
) -> Iterator[SlowProxy]:
    """A SlowProxy running on its own thread until the block ends."""
    proxy = SlowProxy(target_port, delay, slows)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(proxy._loop)
        task = proxy._loop.create_task(proxy._listen(started))
        with suppress(asyncio.CancelledError):
            proxy._loop.run_until_complete(task)

    thread = threading.Thread(target=run, name="slow-proxy", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError("the slow proxy did not start listening within 10 s")
    try:
        yield proxy
    finally:
        proxy._loop.call_soon_threadsafe(_cancel_all, proxy._loop)
        thread.join(10)
        proxy._loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    for task in asyncio.all_tasks(loop):
        task.cancel()
