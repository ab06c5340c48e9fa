"""edgeserve admin rollout: progressive delivery that moves on only when every gate passes.

Each step gives B its share on every instance, reads the metrics of the step (from each
instance's /metrics, or from Prometheus), and judges B against A gate by gate. A step moves on
only when every gate passes with enough samples; a failed gate sets B to 0 with the reason
recorded and exits 1. Interrupted, B keeps its current share and a re-run resumes there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from edgeserve.cli.analysis import (
    FAIL,
    INCONCLUSIVE,
    PASS,
    WAIT,
    GateResult,
    Gates,
    StepWindow,
    evaluate,
    failure_reason,
    few_clients,
    overall,
    step_window,
)
from edgeserve.cli.fleet import Outcome, run_on_each
from edgeserve.cli.looks import MAX_LOOKS, ONE_SIDED_ALPHA, StepLooks
from edgeserve.cli.options import Token, Urls, normalise_url
from edgeserve.cli.output import (
    INCONCLUSIVE_EXIT,
    INTERRUPTED,
    USAGE_ERROR,
    console,
    fail,
    stderr,
    warning_line,
)
from edgeserve.cli.prometheus import prometheus_scrape
from edgeserve.cli.render import percent_cell
from edgeserve.cli.scrape import Scrape
from edgeserve.cli.shift import weights_for
from edgeserve.cli.status import scrape_each
from edgeserve.client import ClientError
from edgeserve.traffic.class_flips import OTHER
from edgeserve.variants import CANDIDATE, share, weights_of

POLL_SECONDS = 1.0
OUTCOME_STYLE = {PASS: "green", FAIL: "bold red", WAIT: "yellow", INCONCLUSIVE: "yellow"}
ReadMetrics = Callable[[], list[Scrape]]


class Stop(Exception):
    """The rollout must stop with B at 0; the message says why."""


class Undecided(Stop):
    """The gates could not tell B from their limits in time: stop without promoting."""


def parse_steps(value: str) -> list[float]:
    """'5,10,25,50,100' -> [5, 10, 25, 50, 100]: rising B percentages in (0, 100]."""
    try:
        steps = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a list of percentages like 5,10,25,50,100"
        ) from None
    if not steps or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise typer.BadParameter(
            f"{value!r} must be rising percentages above 0 and at most 100, like 5,10,25,50,100"
        )
    return steps


def parse_class_flips(values: list[str]) -> dict[str, float]:
    """['yellow=0.1', ...] -> {'yellow': 0.1}: A's labels and the share of each B may change."""
    limits: dict[str, float] = {}
    for value in values:
        label, _, rate = value.rpartition("=")
        try:
            limit = float(rate)
        except ValueError:
            limit = -1.0
        if not label or not 0 < limit <= 1:
            raise typer.BadParameter(
                f"{value!r} must be LABEL=RATE with RATE above 0 and at most 1, like yellow=0.1"
            )
        if label == OTHER:
            raise typer.BadParameter(
                f"{value!r}: 'other' groups every label past the first 20: name a label"
            )
        limits[label] = limit
    return limits


def plan_from(current: float, steps: list[float]) -> list[float]:
    """The steps still to take: a re-run first re-judges B where it stands, then goes on."""
    ahead = [s for s in steps if s > current + 1e-9]
    return ([current] if current > 0 else []) + ahead


def metric_reader(urls: list[str], prometheus: str | None) -> ReadMetrics:
    if prometheus is None:
        return lambda: scrape_each(urls)
    return lambda: [prometheus_scrape(prometheus)]


def analysis_table(
    percent: float, window: StepWindow, results: list[GateResult], elapsed: float
) -> Table:
    requests = sum(arm.requests for arm in window.arms.values())
    measured = f"measured {percent_cell(window.b_share)} of {requests:.0f} requests"
    clients = "" if not window.clients else f"  ·  {window.clients:.0f} clients (counted to 20)"
    title = f"B at {percent:g}% ({measured}){clients}  ·  {elapsed:.0f}s of data"
    table = Table(title=title, title_justify="left")
    for heading in ("gate", "B", "A", "limit", "samples (B, A / needed)", "result", "looks"):
        table.add_column(heading, justify="left" if heading in ("gate", "limit") else "right")
    for r in results:
        style = OUTCOME_STYLE.get(r.outcome, "dim")
        table.add_row(r.gate, r.b, r.a, r.limit, r.samples, Text(r.outcome, style=style), r.looks)
    return table


def _configs(urls: list[str], token: str | None) -> list[dict[str, Any]]:
    outcomes = run_on_each(urls, token, lambda client: client.config())
    _raise_on_error(outcomes)
    return [o.data or {} for o in outcomes]


def _raise_on_error(outcomes: list[Outcome]) -> None:
    for outcome in outcomes:
        if not outcome.ok:
            message = outcome.error.message if outcome.error else "failed"
            raise ClientError(f"{outcome.url}: {message}")


def _check_ready(configs: list[dict[str, Any]], urls: list[str], gates: Gates) -> None:
    for url, config in zip(urls, configs, strict=True):
        if not (config.get("models") or {}).get(CANDIDATE):
            fail(f"{url} has no model in slot B: load one with 'edgeserve admin load B FILE'")
        quarantine = config.get("quarantine")
        if quarantine:
            fail(
                f"{url} holds B in quarantine ({quarantine.get('reason')}): load a new B, or "
                "clear it with 'edgeserve admin config set --clear-quarantine'"
            )
        shadow_gates = [
            option
            for option, wanted in (
                ("--min-agreement", gates.min_agreement is not None),
                ("--max-class-flip", bool(gates.max_class_flips)),
            )
            if wanted
        ]
        if shadow_gates and not config.get("shadow_enabled"):
            fail(
                f"{' and '.join(shadow_gates)} {'need' if len(shadow_gates) > 1 else 'needs'} "
                f"shadow traffic, which is off on {url}: "
                "turn it on with 'edgeserve admin config set --shadow'",
                USAGE_ERROR,
            )


def _guard_stopped(configs: list[dict[str, Any]], urls: list[str], percent: float) -> str | None:
    """Why B lost its traffic during the step (the canary guard), or None."""
    for url, config in zip(urls, configs, strict=True):
        if config.get("quarantine"):
            return f"canary guard on {url}: {config['quarantine'].get('reason')}"
        if percent > 0 and float(config.get("ab_weight_b", 0)) == 0:
            return f"B's weight dropped to 0 on {url}: {config.get('last_rollback') or 'unknown'}"
    return None


def judge_step(
    percent: float,
    urls: list[str],
    token: str | None,
    read: ReadMetrics,
    gates: Gates,
    interval: float,
    max_wait: float,
    steps: int,
) -> list[GateResult]:
    """Soak `interval` seconds, then judge; while samples are missing or a gate cannot tell
    yet, wait up to `max_wait`, testing each gate only at its looks (cli.looks), which fail B
    at this step's share (one of `steps`) of the rollout's level."""
    started, before = time.monotonic(), read()
    deadline = started + interval + max_wait
    looks = StepLooks(steps=steps)
    time.sleep(interval)
    while True:
        reason = _guard_stopped(_configs(urls, token), urls, percent)
        if reason:
            raise Stop(reason)
        final = time.monotonic() >= deadline
        window = step_window(list(zip(before, read(), strict=True)))
        results = evaluate(window, gates, percent, looks, final)
        verdict = overall(results)
        if verdict not in (WAIT, INCONCLUSIVE) or final:
            console.print(analysis_table(percent, window, results, time.monotonic() - started))
            warning = few_clients(window, percent)
            if warning:
                warning_line(warning)
            if verdict == FAIL:
                raise Stop(failure_reason(results, percent))
            if verdict == INCONCLUSIVE:
                raise Undecided(
                    failure_reason(results, percent, INCONCLUSIVE)
                    + f": still inconclusive after {interval + max_wait:g}s, not promoted "
                    "(collect more samples: raise --max-wait)"
                )
            if verdict == WAIT:
                short = ", ".join(r.gate for r in results if r.outcome == WAIT)
                raise Stop(
                    f"admin rollout stopped at B {percent:g}%: not enough samples for {short} "
                    f"within {interval + max_wait:g}s (raise --max-wait or lower --min-samples)"
                )
            return results
        stderr.print(
            f"B {percent:g}%: waiting for samples ("
            + ", ".join(
                f"{r.gate} {r.samples}" + (f", {r.looks}" if r.looks else "")
                for r in results
                if r.outcome == verdict
            )
            + ")"
        )
        time.sleep(POLL_SECONDS)


def roll_back(urls: list[str], token: str | None, reason: str) -> None:
    """B to 0 on every instance, with the reason recorded where `admin config get` shows it."""
    outcomes = run_on_each(
        urls,
        token,
        lambda c: c.set_config(ab_weight_a=1.0, ab_weight_b=0.0, last_rollback=reason[:500]),
    )
    for outcome in outcomes:
        if not outcome.ok and outcome.error is not None:
            stderr.print(f"could not set B to 0 on {outcome.url}: {outcome.error.message}")


@contextmanager
def per_request_assignment(
    urls: list[str], token: str | None, configs: list[dict[str, Any]]
) -> Iterator[None]:
    """Sticky cookies off on every instance for the rollout's duration, then back as they were:
    with a handful of sticky clients B's share follows the clients, not the weight."""
    sticky = [url for url, config in zip(urls, configs, strict=True) if config.get("sticky_cookie")]
    try:
        _raise_on_error(run_on_each(sticky, token, lambda c: c.set_config(sticky_cookie=False)))
        stderr.print(
            "--per-request: each request is assigned to A or B on its own, not by client "
            f"(sticky cookies off on {len(sticky)} instance(s) until this rollout ends)"
        )
        yield
    finally:
        for outcome in run_on_each(sticky, token, lambda c: c.set_config(sticky_cookie=True)):
            if not outcome.ok and outcome.error is not None:
                stderr.print(
                    f"could not turn sticky cookies back on at {outcome.url}: "
                    f"{outcome.error.message}"
                )
        if sticky:
            stderr.print(f"sticky cookies back on at {len(sticky)} instance(s)")


def _print_plan(plan: list[float], current: float, gates: Gates, interval: float) -> None:
    table = Table(title="admin rollout plan (dry run: nothing changes)", title_justify="left")
    for heading in ("step", "B share", "soak", "gates"):
        table.add_column(heading)
    gate_names = [f"error rate <= {gates.max_error_rate:.1%}"]
    gate_names.append(
        f"p95 inference <= {gates.max_latency_ratio:g}x A (or +{gates.min_latency_delta_ms:g} "
        "ms): at most 5% of B's runs above it"
    )
    if gates.min_agreement is not None:
        gate_names.append(f"shadow agreement >= {gates.min_agreement:.1%}")
    if gates.min_accuracy_delta is not None:
        gate_names.append(f"accuracy B - A >= {gates.min_accuracy_delta:+.1%}")
    for label, limit in gates.max_class_flips.items():
        gate_names.append(f"B changes A's {label} <= {limit:.1%}")
    for index, percent in enumerate(plan, 1):
        resumed = " (current, re-judged)" if percent == current else ""
        table.add_row(str(index), f"{percent:g}%{resumed}", f"{interval:g}s", "; ".join(gate_names))
    console.print(table)
    console.print(f"each gate needs {gates.min_samples} samples per variant")
    console.print(
        f"each gate is tested at most {MAX_LOOKS} times a step: as its samples double, and at "
        f"the step's deadline; the {len(plan)} steps share each gate's "
        f"{ONE_SIDED_ALPHA:.0%} chance of failing a B that meets its limit (see the runbook, 3a)"
    )


def rollout_command(
    steps: Annotated[
        str, typer.Option(help="B's share at each step, in percent, rising.")
    ] = "5,10,25,50,100",
    interval: Annotated[
        float, typer.Option(min=0, help="Seconds each step soaks before it is judged.")
    ] = 60.0,
    max_wait: Annotated[
        float | None,
        typer.Option(min=0, help="Extra seconds a step may wait for samples (default: interval)."),
    ] = None,
    max_error_rate: Annotated[
        float, typer.Option(min=0, max=1, help="Highest error rate B may show.")
    ] = 0.01,
    max_latency_ratio: Annotated[
        float,
        typer.Option(
            min=1,
            help="Highest B/A ratio of p95 inference time: B fails when significantly more "
            "than 5% of its runs take longer than this times A's p95.",
        ),
    ] = 1.5,
    min_latency_delta_ms: Annotated[
        float,
        typer.Option(
            min=0, help="B's p95 may be this many ms above A's, whatever the ratio allows."
        ),
    ] = 5.0,
    min_agreement: Annotated[
        float | None,
        typer.Option(min=0, max=1, help="Lowest shadow top-1 agreement with A (needs shadow on)."),
    ] = None,
    min_accuracy_delta: Annotated[
        float | None,
        typer.Option(min=-1, max=1, help="Lowest B minus A accuracy from feedback, e.g. -0.01."),
    ] = None,
    min_samples: Annotated[
        int, typer.Option(min=1, help="Samples each gate needs per variant before it counts.")
    ] = 100,
    max_class_flip: Annotated[
        list[str] | None,
        typer.Option(
            metavar="LABEL=RATE",
            help="Highest share of A's LABEL answers B may change (needs shadow; repeatable).",
        ),
    ] = None,
    promote: Annotated[
        bool, typer.Option("--promote", help="Promote B to A after the last step passes.")
    ] = False,
    hold: Annotated[
        bool,
        typer.Option("--hold", help="Keep B's share when the gates stay inconclusive (exit 3)."),
    ] = False,
    per_request: Annotated[
        bool,
        typer.Option(
            "--per-request",
            help="Assign each request to A or B on its own, not by client, until the rollout "
            "ends (sticky cookies off, then back).",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and change nothing.")
    ] = False,
    prometheus: Annotated[
        str | None,
        typer.Option(help="Read metrics from this Prometheus instead of each --url's /metrics."),
    ] = None,
    urls: Urls = None,
    token: Token = None,
) -> None:
    """Give B more traffic step by step; every gate must pass, a failed gate sets B to 0."""
    urls = urls or []
    plan_steps = parse_steps(steps)
    gates = Gates(
        max_error_rate=max_error_rate,
        max_latency_ratio=max_latency_ratio,
        min_latency_delta_ms=min_latency_delta_ms,
        min_agreement=min_agreement,
        min_accuracy_delta=min_accuracy_delta,
        min_samples=min_samples,
        max_class_flips=parse_class_flips(max_class_flip or []),
    )
    prometheus = normalise_url(prometheus) if prometheus else None
    try:
        configs = _configs(urls, token)
    except ClientError as error:
        fail(error.message)
    _check_ready(configs, urls, gates)
    current = min(share(weights_of(config), CANDIDATE) * 100 for config in configs)
    plan = plan_from(round(current, 6), plan_steps)
    if dry_run:
        _print_plan(plan, current, gates, interval)
        if per_request:
            console.print("--per-request: sticky cookies off while it runs, then back")
        return
    read = metric_reader(urls, prometheus)
    if not per_request:
        _run(plan, urls, token, read, gates, interval, max_wait, promote, hold)
        return
    try:
        with per_request_assignment(urls, token, configs):
            _run(plan, urls, token, read, gates, interval, max_wait, promote, hold)
    except ClientError as error:
        fail(f"--per-request could not turn sticky cookies off: {error.message}")


def _run(plan, urls, token, read, gates, interval, max_wait, promote, hold) -> None:
    reached = plan[0] if plan else 0.0
    try:
        for percent in plan:
            outcomes = run_on_each(urls, token, lambda c, p=percent: c.set_config(**weights_for(p)))
            _raise_on_error(outcomes)
            reached = percent
            stderr.print(f"B at {percent:g}% on {len(urls)} instance(s); judging in {interval:g}s")
            judge_step(percent, urls, token, read, gates, interval, max_wait or interval, len(plan))
    except Undecided as undecided:
        if hold:
            fail(f"{undecided}; B stays at {reached:g}% (--hold)", INCONCLUSIVE_EXIT)
        roll_back(urls, token, str(undecided))
        fail(f"{undecided}; B is back at 0% on every instance", INCONCLUSIVE_EXIT)
    except Stop as stop:
        roll_back(urls, token, str(stop))
        fail(f"{stop}; B is back at 0% on every instance")
    except ClientError as error:
        fail(f"{error.message}; B stays at {reached:g}% (run the same command again to resume)")
    except KeyboardInterrupt:
        fail(f"interrupted: B stays at {reached:g}%; run the same command to resume", INTERRUPTED)
    if promote:
        outcomes = run_on_each(urls, token, lambda client: client.promote())
        try:
            _raise_on_error(outcomes)
        except ClientError as error:
            fail(f"every gate passed but promote failed: {error.message}")
        console.print(
            f"every gate passed at every step: B promoted to A on {len(urls)} instance(s)"
        )
    else:
        console.print(f"every gate passed: B serves {reached:g}% (promote with --promote)")
