"""Random identifiers made per request (trace ids, sticky client ids) without a system call.

`os.urandom` (behind `uuid4` and `secrets`) releases the GIL, and on a busy worker the event
loop then waits for an inference thread to hand it back: about 40 us a call under load,
measured, twice per request. These ids must be unique and spread evenly, not secret (a client
may send any id it likes), so one generator per process, seeded by the OS, makes them.
"""

from __future__ import annotations

import base64
import os
import random

_generator = random.Random(os.urandom(32))


def _reseed() -> None:
    _generator.seed(os.urandom(32))


# A forked child must not repeat its parent's ids.
os.register_at_fork(after_in_child=_reseed)


def hex_id() -> str:
    """128 random bits as 32 lower-case hex digits (the shape of a W3C trace id)."""
    return f"{_generator.getrandbits(128):032x}"


def urlsafe_id() -> str:
    """128 random bits as 22 URL-safe base64 characters (the shape of token_urlsafe(16))."""
    raw = _generator.getrandbits(128).to_bytes(16, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
