"""The end of every admin command: a row per instance, the fleet read-back, drift, exit code."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text

from edgeserve.cli.fleet import Outcome, describe_drift, drift, read_back, served
from edgeserve.cli.output import console, emit_json, error_line, fail
from edgeserve.cli.render import instances_table, readback_table
from edgeserve.variants import VARIANTS


def report(
    title: str,
    columns: Sequence[str],
    row: Callable[[dict[str, Any]], list[str]],
    outcomes: list[Outcome],
    *,
    token: str | None,
    as_json: bool,
    readback: list[Outcome] | None = None,
    extra: dict[str, Any] | None = None,
    problem: str | None = None,
) -> None:
    """Print a row per instance (and, for a fleet, the read-back and drift); exit 1 on failure."""
    urls = [o.url for o in outcomes]
    fleet = len(urls) > 1
    if fleet and readback is None:
        readback = read_back(urls, token)
    differing = drift(readback) if fleet and readback is not None else {}
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        record: dict[str, Any] = {**(extra or {}), "instances": [o.to_json() for o in outcomes]}
        if fleet and readback is not None:
            record["readback"] = [_readback_json(o) for o in readback]
            record["drift"] = differing
        emit_json(record)
    elif not fleet and failed:
        pass  # one instance, one line below
    else:
        console.print(instances_table(title, columns, outcomes, row))
        if fleet and readback is not None:
            console.print(readback_table(readback, differing))
            _say_drift(readback, differing)
    if problem:
        fail(problem)
    if failed:
        if not fleet:
            fail(failed[0].error.message if failed[0].error else "failed")
        for outcome in failed:
            error_line(outcome.error.message if outcome.error else f"{outcome.url} failed")
        fail(f"{len(failed)} of {len(urls)} instances failed: {', '.join(o.url for o in failed)}")


def _say_drift(readback: list[Outcome], differing: dict[str, Any]) -> None:
    reachable = [o for o in readback if o.ok and o.data is not None]
    if differing:
        console.print(Text.assemble(("DRIFT:", "bold yellow"), " ", describe_drift(differing)))
    elif len(reachable) < 2:
        console.print(
            f"read back {len(reachable)} of {len(readback)} instances: nothing to compare"
        )
    else:
        view = served(reachable[0].data or {})
        console.print(
            f"no drift: {len(reachable)} instances serve generation {view['generation']}, "
            + ", ".join(f"{variant} {view[variant] or 'none'}" for variant in VARIANTS)
        )


def _readback_json(outcome: Outcome) -> dict[str, Any]:
    if outcome.ok and outcome.data is not None:
        return {"url": outcome.url, "ok": True, **served(outcome.data)}
    return outcome.to_json()
