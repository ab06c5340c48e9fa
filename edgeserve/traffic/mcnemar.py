"""An exact McNemar test with a non-inferiority margin, on paired right/wrong outcomes.

When A and B judged the same inputs, only the pairs where exactly one was right say anything
about which is better. Given d such pairs, the number B won is Binomial(d, pi), where pi is
B's share of the discordant pairs. B's accuracy minus A's equals `margin` exactly when
pi = 1/2 + margin / (2 * discordance), the discordance (d / pairs) estimated from the data.
Both one-sided exact tests are run at that boundary: B surely within the margin passes, B surely
beyond it fails, anything else is inconclusive."""

from __future__ import annotations

from edgeserve.traffic.binomial import at_least, at_most

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"


def paired_verdict(
    b_only: int,
    a_only: int,
    pairs: int,
    margin: float,
    alpha: float,
    fail_alpha: float | None = None,
) -> str:
    """`b_only`: pairs only B got right; `a_only`: only A; `pairs`: all judged pairs; pass at
    level `alpha`, fail at `fail_alpha` (by default the same)."""
    discordant = b_only + a_only
    if discordant == 0:  # A and B right on exactly the same inputs: B - A is 0
        return PASS if margin < 0 else FAIL if margin > 0 else INCONCLUSIVE
    boundary = 0.5 + margin * pairs / (2 * discordant)
    if boundary <= 0:  # B losing every discordant pair would still be within the margin
        return PASS
    if boundary >= 1:  # B winning every discordant pair would still fall short of it
        return FAIL
    if at_least(b_only, discordant, boundary) <= alpha:
        return PASS
    if at_most(b_only, discordant, boundary) <= (alpha if fail_alpha is None else fail_alpha):
        return FAIL
    return INCONCLUSIVE
