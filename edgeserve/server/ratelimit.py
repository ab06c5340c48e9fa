"""Per-client token buckets (one set per worker process)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict


class TokenBuckets:
    """`take(client)` answers 0 when allowed, else the seconds until a token is back."""

    def __init__(self, rate_per_second: float, burst: int, max_clients: int = 65536):
        self.rate = rate_per_second
        self.burst = max(1, burst)
        self.max_clients = max_clients
        self.buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, client: str, now: float | None = None) -> float:
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        tokens, updated = self.buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
        if tokens >= 1.0:
            self.buckets[client] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self.buckets[client] = (tokens, now)
            wait = (1.0 - tokens) / self.rate
        while len(self.buckets) > self.max_clients:
            self.buckets.popitem(last=False)
        return wait


def retry_after_header(wait_seconds: float) -> str:
    return str(max(1, math.ceil(wait_seconds)))
