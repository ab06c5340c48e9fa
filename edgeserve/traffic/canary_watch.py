"""The canary guard at work: each request's model outcome goes in, a rollback comes out.

A verdict takes B out of this worker's traffic at once, then commits the rollback like any
other change (weight 0, B quarantined), persisted first so every worker and instance follows.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from edgeserve.errors import ModelHazard, StateUnavailable
from edgeserve.inference.model import Model
from edgeserve.observability import metrics
from edgeserve.observability.logging import log
from edgeserve.settings import Settings
from edgeserve.state.schema import Quarantine, RuntimeState
from edgeserve.state.sync import Change
from edgeserve.traffic.canary import CanaryGuard, GuardLimits
from edgeserve.variants import CANDIDATE, CURRENT, Variant

Commit = Callable[[Change], Awaitable[RuntimeState]]
UNSAFE = "unsafe:"
"""How a quarantine's reason starts when B died, hung, ran out of memory or answered NaN."""


def guard_limits(settings: Settings) -> GuardLimits:
    return GuardLimits(
        window=settings.canary_window,
        min_samples=settings.canary_min_samples,
        max_error_rate=settings.canary_max_error_rate,
        max_latency_ratio=settings.canary_max_latency_ratio,
        min_latency_delta_ms=settings.canary_min_latency_delta_ms,
        max_consecutive_failures=settings.canary_max_consecutive_failures,
    )


def roll_back(judged: str, reason: str) -> Change:
    """The change that sends no traffic to B's `judged` version and quarantines it."""

    def change(state: RuntimeState) -> RuntimeState:
        b = state.models.get(CANDIDATE)
        if b is None or b.version != judged:
            return state  # an operator replaced B meanwhile: the verdict was about the old one
        return state.next(
            ab_weight_b=0.0,
            ab_weight_a=state.ab_weight_a or 1.0,
            last_rollback=reason,
            quarantine=Quarantine(version=b.version, reason=reason),
        )

    return change


class CanaryWatch:
    def __init__(self, limits: GuardLimits, commit: Commit):
        self.guard = CanaryGuard(limits)
        self.commit = commit
        self.max_hazards = limits.max_consecutive_failures
        self.hazards = 0
        """B's runs in a row that showed it unsafe (see `contain`)."""
        self.tripped: str | None = None
        """B's sha256 this worker's guard rolled back: no user reaches it while the commit runs."""

    def serves_users(self, model_b: Model | None, state: RuntimeState) -> bool:
        """B is loaded and not quarantined (by the state, or by this worker's guard just now)."""
        if model_b is None or model_b.sha256 == self.tripped:
            return False
        quarantine = state.quarantine
        return quarantine is None or quarantine.version != model_b.sha256

    def shadows(self, model_b: Model | None, state: RuntimeState) -> bool:
        """Shadow runs B, quarantined or not, unless it was found unsafe: then it stops."""
        if model_b is None:
            return False
        quarantine = state.quarantine
        if quarantine is None or quarantine.version != model_b.sha256:
            return True
        return not quarantine.reason.startswith(UNSAFE)

    def candidate_changed(self) -> None:
        """A new B is judged afresh."""
        self.guard.reset()
        self.hazards = 0

    def state_applied(self, state: RuntimeState) -> None:
        if state.quarantine is not None and state.quarantine.version == self.tripped:
            self.tripped = None  # the rollback landed: the state keeps B out from now on

    async def observe(
        self, judged: Model | None, variant: Variant, size: int, ok: bool, seconds: float
    ) -> None:
        """One request's model outcome (`ok` False only when the session run failed).

        `judged` is the B this request's state put under the guard (None: no guard)."""
        if judged is None or judged.sha256 == self.tripped:
            return
        self.guard.record(variant, size, ok, seconds, time.monotonic())
        if variant == CURRENT and not self.guard.failure_run_due():
            return  # A's outcome matters at once only when B's failure run waits on it
        reason = self.guard.verdict()
        if reason is None:
            return
        await self.trip(judged.sha256, reason)

    async def contain(self, model_b: Model, hazard: ModelHazard | None) -> None:
        """Every run of B (routed, forced or shadow), guard on or off: a model that dies, hangs,
        runs out of memory or answers non-finite scores CANARY_MAX_CONSECUTIVE_FAILURES times
        in a row is rolled back and quarantined, the reason naming it."""
        if model_b.sha256 == self.tripped:
            return
        if hazard is None:
            self.hazards = 0
            return
        self.hazards += 1
        if self.hazards >= self.max_hazards:
            await self.quarantine_unsafe(model_b.sha256, hazard.message)

    async def quarantine_unsafe(self, version: str, why: str) -> None:
        """Roll back and quarantine B's `version`, found unsafe: shadow stops running it too."""
        await self.trip(version, f"{UNSAFE} {why}")

    async def trip(self, judged: str, reason: str) -> None:
        """Take B's `judged` sha256 out of traffic at once, then commit the rollback."""
        self.tripped = judged  # at once: no request waits for the commit to stop
        self.guard.reset()
        self.hazards = 0
        try:
            committed = await self.commit(roll_back(judged, reason))
        except StateUnavailable as error:
            log.error("canary_rollback_not_persisted", reason=reason, error=error.message)
            return
        metrics.canary_rollbacks.inc()
        log.warning("canary_rollback", reason=reason, generation=committed.generation)
