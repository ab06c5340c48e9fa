"""Summarise a k6 JSON stream (k6 run --out json=FILE): throughput, latency, errors per variant."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np

ALL = "all"


class ReportError(ValueError):
    """The file is not a k6 JSON stream we can read."""


@dataclass
class Series:
    """Requests of one group (all, or one variant): (unix time, ms) pairs and failures."""

    points: list[tuple[float, float]] = field(default_factory=list)
    failed: int = 0


@dataclass(frozen=True)
class Summary:
    group: str
    requests: int
    requests_per_second: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_dict(self) -> dict[str, float | int | str]:
        return {
            "group": self.group,
            "requests": self.requests,
            "requests_per_second": round(self.requests_per_second, 3),
            "p50_ms": round(self.p50_ms, 3),
            "p95_ms": round(self.p95_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "errors": self.errors,
            "error_rate": round(self.error_rate, 5),
        }


def _timestamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_series(lines: Iterable[str]) -> dict[str, Series]:
    """Group http_req_duration and http_req_failed points by the `variant` tag."""
    groups: dict[str, Series] = defaultdict(Series)
    seen_points = False
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            raise ReportError(
                f"line {number} is not JSON: give the file written by 'k6 run --out json=FILE'"
            ) from None
        if record.get("type") != "Point":
            continue
        seen_points = True
        metric, data = record.get("metric"), record.get("data", {})
        variant = (data.get("tags") or {}).get("variant")
        targets = [ALL, variant] if variant else [ALL]
        if metric == "http_req_duration":
            point = (_timestamp(data["time"]), float(data["value"]))
            for name in targets:
                groups[name].points.append(point)
        elif metric == "http_req_failed" and data.get("value"):
            for name in targets:
                groups[name].failed += 1
    if not seen_points:
        raise ReportError(
            "no k6 data points found: give the file written by 'k6 run --out json=FILE'"
        )
    return dict(groups)


def summarise(name: str, series: Series) -> Summary:
    if not series.points:
        return Summary(name, 0, 0.0, 0.0, 0.0, 0.0, series.failed)
    times = np.array([t for t, _ in series.points])
    latencies = np.array([ms for _, ms in series.points])
    span = max(times.max() - times.min(), 1e-9)
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    return Summary(
        group=name,
        requests=len(latencies),
        requests_per_second=len(latencies) / span if len(latencies) > 1 else 0.0,
        p50_ms=float(p50),
        p95_ms=float(p95),
        p99_ms=float(p99),
        errors=series.failed,
    )


def summaries(groups: dict[str, Series]) -> list[Summary]:
    order = [ALL, *sorted(name for name in groups if name != ALL)]
    return [summarise(name, groups[name]) for name in order if name in groups]


def plot_latency(groups: dict[str, Series], out: Path) -> Path:
    """A latency-over-time PNG, one line per group (1 s buckets, p50 and p95)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError(
            "plots need matplotlib: pip install 'edgeserve[plots]' (or use --no-plot)"
        ) from None
    start = min(t for series in groups.values() for t, _ in series.points)
    figure, axes = plt.subplots(figsize=(10, 4.5), dpi=100)
    for name, series in sorted(groups.items()):
        if not series.points:
            continue
        buckets: dict[int, list[float]] = defaultdict(list)
        for t, ms in series.points:
            buckets[int(t - start)].append(ms)
        seconds = sorted(buckets)
        for quantile, style in ((50, "-"), (95, "--")):
            values = [np.percentile(buckets[s], quantile) for s in seconds]
            axes.plot(seconds, values, style, label=f"{name} p{quantile}")
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("http_req_duration (ms)")
    axes.set_title("Latency over time")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
