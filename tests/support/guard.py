"""The canary guard limits the unit tests judge with (the settings' defaults, spelled out)."""

from edgeserve.traffic.canary import GuardLimits

LIMITS = GuardLimits(
    window=200,
    min_samples=20,
    max_error_rate=0.05,
    max_latency_ratio=2.0,
    min_latency_delta_ms=5.0,
    max_consecutive_failures=5,
)
