"""Failed admin logins per client address: after a few wrong tokens the address must wait.

Guessing a token costs one request; without this a client could try about 100 a second per
worker. After `free_failures` wrong tokens in a row an address waits `first_wait` seconds, and
each further wrong token (once the wait is over) doubles the wait, up to `max_wait`. While it
waits every admin request from it is refused, the right token included, so the refusal says
nothing about a guess. A right token forgets the address. One table per worker process,
bounded: beyond `max_clients` the address least recently seen is forgotten.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_WAIT_SECONDS = 900.0
"""The longest wait (15 minutes): a guesser gets about 100 tries a day per address and worker."""
MAX_DOUBLINGS = 30
"""The wait stops doubling here long before a float overflows (2**30 s is decades)."""


@dataclass
class Failures:
    """One address: wrong tokens in a row, and until when (monotonic seconds) it must wait."""

    count: int = 0
    until: float = 0.0


class FailedLogins:
    """`wait(client)` answers 0 when the client may try a token, else the seconds left."""

    def __init__(
        self,
        free_failures: int,
        first_wait: float,
        max_wait: float = MAX_WAIT_SECONDS,
        max_clients: int = 65536,
    ):
        self.free_failures = free_failures
        self.first_wait = first_wait
        self.max_wait = max(max_wait, first_wait)
        self.max_clients = max_clients
        self.clients: OrderedDict[str, Failures] = OrderedDict()

    def wait(self, client: str, now: float | None = None) -> float:
        failures = self.clients.get(client)
        if failures is None:
            return 0.0
        now = time.monotonic() if now is None else now
        return max(0.0, failures.until - now)

    def failed(self, client: str, now: float | None = None) -> float:
        """Count a wrong token; answers the wait it starts (0 while some are still free)."""
        now = time.monotonic() if now is None else now
        failures = self.clients.pop(client, None) or Failures()
        self.clients[client] = failures  # most recently seen last: evicted last
        failures.count += 1
        while len(self.clients) > self.max_clients:
            self.clients.popitem(last=False)
        beyond = failures.count - self.free_failures
        if beyond < 0:
            return 0.0
        seconds = min(self.max_wait, self.first_wait * 2.0 ** min(beyond, MAX_DOUBLINGS))
        failures.until = now + seconds
        return seconds

    def succeeded(self, client: str) -> None:
        """The right token: this address starts again with every failure free."""
        self.clients.pop(client, None)
