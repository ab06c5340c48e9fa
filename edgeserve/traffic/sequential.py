"""Always-valid evidence that a rate is above a null rate: a mixture sequential test.

The e-value is the likelihood ratio of the counts (hits and misses) under a rate above `null`,
averaged over a fixed grid of alternatives, against `null`. Under any rate at or below `null`
it is a nonnegative supermartingale, so by Ville's inequality it ever reaches 1 / alpha with
probability at most alpha, however often it is looked at: it may be checked after every
request, on counts that only grow, which a fixed-sample test re-run on a window cannot be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

ODDS_RATIOS = tuple(2 ** (step / 2) for step in range(1, 9))
"""The alternatives: the null's odds times 1.4 up to 16, weighted equally."""
SMALLEST_NULL = 1e-6
"""A null of 0 (no failure allowed at all) is judged as this, so one hit is finite evidence."""


@cache
def log_ratios(null: float) -> tuple[tuple[float, float], ...]:
    """Per alternative: log(rate / null) for a hit and log((1 - rate) / (1 - null)) for a miss."""
    null = max(null, SMALLEST_NULL)
    odds = null / (1 - null)
    rates = (odds * ratio / (1 + odds * ratio) for ratio in ODDS_RATIOS)
    return tuple((math.log(rate / null), math.log((1 - rate) / (1 - null))) for rate in rates)


def log_evalue(hits: int, misses: int, null: float) -> float:
    """Log of the mixture e-value for `hits` in `hits + misses` trials against rate `null`."""
    terms = [hits * hit + misses * miss for hit, miss in log_ratios(null)]
    top = max(terms)
    return top + math.log(sum(math.exp(term - top) for term in terms) / len(terms))


@dataclass
class SequentialTest:
    """Counts hits and misses; `crossed` once the e-value has reached 1 / alpha.

    Crossing is kept: the chance that it ever happens under the null is what alpha bounds, so
    a decision that waits for other conditions may still use it later."""

    null: float
    alpha: float
    hits: int = 0
    misses: int = 0
    crossed: bool = False
    threshold: float = field(init=False)

    def __post_init__(self) -> None:
        self.threshold = math.log(1 / self.alpha)

    def add(self, hit: bool) -> None:
        if not hit:
            self.misses += 1
            return  # a miss only lowers the e-value: it cannot cross now
        self.hits += 1
        if not self.crossed:
            self.crossed = self.log_evalue() >= self.threshold

    def log_evalue(self) -> float:
        return log_evalue(self.hits, self.misses, self.null)

    def evalue(self) -> float:
        return math.exp(min(self.log_evalue(), 700.0))
