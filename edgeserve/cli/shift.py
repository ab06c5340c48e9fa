"""edgeserve admin shift: move B's share of traffic, at once or in steps, stopping on a rollback."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from edgeserve.cli.analysis import few_clients, step_window
from edgeserve.cli.fleet import Outcome, run_on_each
from edgeserve.cli.options import AsJson, Token, Urls
from edgeserve.cli.output import INTERRUPTED, fail, progress
from edgeserve.cli.render import CONFIG_COLUMNS, config_row, percent_cell
from edgeserve.cli.report import report
from edgeserve.cli.scrape import Scrape
from edgeserve.cli.status import scrape_each
from edgeserve.client import ClientError
from edgeserve.variants import CANDIDATE, share, weights_of


def weights_for(percent: float) -> dict[str, float]:
    """Raw weights that give B `percent` % of the traffic."""
    b = round(percent / 100.0, 6)
    return {"ab_weight_a": round(1.0 - b, 6), "ab_weight_b": b}


def ramp_steps(start: float, target: float, step: float | None) -> list[float]:
    """The B percentages to set, in order, ending at target; one step without --step."""
    if step is None or abs(target - start) <= step:
        return [target]
    direction = 1.0 if target > start else -1.0
    points: list[float] = []
    current = start
    while abs(target - current) > step:
        current = round(current + direction * step, 6)
        points.append(current)
    points.append(target)
    return points


def rollback_reason(config: dict[str, Any], baseline: str | None, percent: float) -> str | None:
    """Why the canary guard took B out since the shift began, or None if it did not."""
    reason = config.get("last_rollback")
    if reason and reason != baseline:
        return str(reason)
    if percent > 0 and float(config.get("ab_weight_b", 0)) == 0:
        return "B's weight dropped to 0"
    return None


def overridden_rollbacks(outcomes: list[Outcome], baselines: dict[str, str | None]) -> list[str]:
    """Instances where a step landed just after a rollback and gave B traffic again."""
    return [
        o.url
        for o in outcomes
        if o.data is not None
        and o.data.get("last_rollback") not in (None, baselines.get(o.url))
        and float(o.data.get("ab_weight_b", 0)) > 0
    ]


class Stop(Exception):
    """The shift must stop here; the message says why."""


def _check(outcomes: list[Outcome], baselines: dict[str, str | None], percent: float) -> None:
    for outcome in outcomes:
        if not outcome.ok or outcome.data is None:
            message = outcome.error.message if outcome.error else "failed"
            raise Stop(f"{outcome.url} failed during the shift: {message}")
        reason = rollback_reason(outcome.data, baselines.get(outcome.url), percent)
        if reason:
            raise Stop(f"canary rollback on {outcome.url} at B {percent:g}%: {reason}")


def shift_command(
    percent: Annotated[
        float,
        typer.Argument(min=0, max=100, help="B's share of traffic, 0 to 100."),
    ],
    step: Annotated[
        float | None,
        typer.Option(min=0.1, max=100, help="Ramp in steps of this many points (e.g. 10)."),
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0, help="Seconds between steps, watching for a rollback.")
    ] = 30.0,
    urls: Urls = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Give B PERCENT of the traffic; --step ramps there and stops on a canary rollback."""
    urls = urls or []
    current = run_on_each(urls, token, lambda client: client.config())
    if not all(o.ok for o in current):
        report("shift", CONFIG_COLUMNS, config_row, current, token=token, as_json=as_json)
        return
    baselines = {o.url: (o.data or {}).get("last_rollback") for o in current}
    start = min(share(weights_of(o.data or {}), CANDIDATE) * 100 for o in current)
    steps = ramp_steps(start, percent, step)
    last, reached, problem = current, start, None
    with progress(transient=False) as bar:
        task = bar.add_task(f"B {start:g}% → {percent:g}%", total=len(steps))
        try:
            for index, target in enumerate(steps):
                last = run_on_each(urls, token, lambda c, t=target: c.set_config(**weights_for(t)))
                _check(last, baselines, target)
                reached = target
                bar.advance(task)
                bar.console.print(f"B at {target:g}% on {len(urls)} instance(s)")
                if index + 1 < len(steps):
                    _watch(urls, token, interval, baselines, target, bar, task, steps[index + 1])
        except Stop as stop:
            problem = f"{stop}; the shift stopped (target was {percent:g}%)"
            undo = overridden_rollbacks(last, baselines)
            if undo:  # the guard's decision stands: B goes back to 0 there
                run_on_each(undo, token, lambda c: c.set_config(ab_weight_a=1.0, ab_weight_b=0.0))
            last = run_on_each(urls, token, lambda client: client.config())
        except KeyboardInterrupt:
            fail(f"interrupted: B stays at {reached:g}% (target was {percent:g}%)", INTERRUPTED)
    extra = {"target": percent, "reached": reached, "stopped": problem}
    title = f"shift B to {percent:g}%"
    report(
        title,
        CONFIG_COLUMNS,
        config_row,
        last,
        token=token,
        as_json=as_json,
        extra=extra,
        problem=problem,
    )


def _watch(urls, token, interval, baselines, percent, bar, task, upcoming) -> None:
    """Wait `interval` seconds before the next step, reading each config about once a second;
    then say what share of the requests B served meanwhile."""
    deadline = time.monotonic() + interval
    before = _scrapes(urls)
    while (left := deadline - time.monotonic()) > 0:
        bar.update(task, description=f"B {percent:g}%, {upcoming:g}% in {left:.0f}s")
        time.sleep(min(1.0, left))
        _check(run_on_each(urls, token, lambda client: client.config()), baselines, percent)
    after = _scrapes(urls)
    if before is None or after is None:
        return  # the shift goes on: the share is for the eye, the rollback check is what matters
    window = step_window(list(zip(before, after, strict=True)))
    requests = sum(arm.requests for arm in window.arms.values())
    if not requests:
        return
    bar.console.print(
        f"B at {percent:g}%: measured {percent_cell(window.b_share)} of {requests:.0f} requests "
        f"in {interval:g}s"
    )
    warning = few_clients(window, percent)
    if warning:
        bar.console.print(f"warning: {warning}")


def _scrapes(urls: list[str]) -> list[Scrape] | None:
    try:
        return scrape_each(urls)
    except ClientError:
        return None
