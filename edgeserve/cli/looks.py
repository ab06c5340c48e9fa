"""How often a rollout step may test each gate: a bounded number of looks, each at its share
of the level (Bonferroni).

A gate re-tested every second with a test made for one look fails a B at its limit far more
often than 5 %: each look is one more chance. So in one step a gate gets at most `most` looks:
the first once it has its samples, each next one only once its samples have grown GROWTH-fold
since the last, and the last one kept for the step's deadline, where it has the most data. The
deadline's look tests at half the level, the looks before it share the other half, so the
chance that any look of the step wrongly fails (or wrongly passes) is at most the sum, 5 %.
That holds wherever the looks fall, because when they fall depends only on sample counts and
the clock, never on the outcomes. A verdict reached at a look holds for the rest of the step.
Early looks are strict on purpose: they settle the clear cases; a B near its limit is judged at
the deadline.

A rollout has several steps, and a B that meets a gate's limit is wrongly stopped if any one of
them fails it: so each step's fail side gets its share of the level, alpha / steps, and the
chance that a whole rollout wrongly fails such a B stays at most alpha per gate. The pass side
keeps alpha per step: a B worse than the limit is promoted only if it passes every step, which
is no likelier than passing one. Both levels are fixed before the rollout starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from edgeserve.traffic.mcnemar import FAIL, INCONCLUSIVE, PASS

ONE_SIDED_ALPHA = 0.05
"""A step's level for pass, and a whole rollout's for fail, each shared by its looks."""
MAX_LOOKS = 5
"""Looks per gate per step: up to 4 as the samples grow, and the one at the deadline."""
GROWTH = 2.0
"""A gate looks again only once its samples have doubled since its last look."""


@dataclass
class Looks:
    """One gate's looks in one step."""

    most: int = MAX_LOOKS
    steps: int = 1
    """The rollout's steps, which share the fail side's level."""
    spent: int = 0
    samples_at_last: float = 0.0
    outcome: str | None = None
    """The last look's verdict; pass or fail holds for the rest of the step."""
    alpha: float = field(init=False)
    """The pass side's level at the last look (before any look: at the first)."""

    def __post_init__(self) -> None:
        self.alpha = self.interim_alpha if self.most > 1 else self.final_alpha

    @property
    def interim_alpha(self) -> float:
        """Each look's level before the deadline: half the level, split between them."""
        return ONE_SIDED_ALPHA / 2 / (self.most - 1) if self.most > 1 else 0.0

    @property
    def final_alpha(self) -> float:
        """The deadline look's level: what the looks before it leave (all of it for one look)."""
        return ONE_SIDED_ALPHA - self.interim_alpha * (self.most - 1)

    @property
    def fail_alpha(self) -> float:
        """The fail side's level at the last look: this step's share of the rollout's."""
        return self.alpha / self.steps

    def due(self, samples: float, final: bool) -> bool:
        if self.outcome in (PASS, FAIL) or self.spent >= self.most:
            return False
        if final:
            return True
        grown = self.spent == 0 or samples >= GROWTH * self.samples_at_last
        return grown and self.spent < self.most - 1

    def judge(self, samples: float, final: bool, test: Callable[[float, float], str]) -> str:
        """The gate's verdict: `test` (given this look's pass and fail levels) runs only when a
        look is due."""
        if self.due(samples, final):
            self.spent += 1
            self.samples_at_last = samples
            self.alpha = self.final_alpha if final else self.interim_alpha
            self.outcome = test(self.alpha, self.fail_alpha)
        return self.outcome or INCONCLUSIVE

    def describe(self) -> str:
        return f"look {self.spent} of at most {self.most}"


@dataclass
class StepLooks:
    """Every gate's looks in one step, kept from one evaluation of the step to the next."""

    most: int = MAX_LOOKS
    steps: int = 1
    """The rollout's steps, which share each gate's fail level."""
    gates: dict[str, Looks] = field(default_factory=dict)

    def of(self, gate: str) -> Looks:
        return self.gates.setdefault(gate, Looks(self.most, self.steps))
