"""How many distinct sticky clients a traffic split has met, since the weights last changed.

With sticky assignment a client keeps its variant, so with a handful of clients B's share of
requests follows the clients, not the weight (4 clients at weight 10 % sent 50 % to B). The
count only needs to tell "fewer than ENOUGH" from "at least ENOUGH", so at most ENOUGH ids are
kept: bounded memory (ids are at most 64 characters), whatever the traffic."""

from __future__ import annotations

ENOUGH = 20
"""From this many clients on, shares are counted as following the weights."""


class StepClients:
    def __init__(self, enough: int = ENOUGH):
        self.enough = enough
        self.ids: set[str] = set()

    def saw(self, client_id: str | None) -> bool:
        """Count a request's client id; True when it is one more distinct client."""
        if client_id is None or len(self.ids) >= self.enough or client_id in self.ids:
            return False
        self.ids.add(client_id)
        return True

    def restart(self) -> None:
        self.ids.clear()

    @property
    def count(self) -> int:
        return len(self.ids)
