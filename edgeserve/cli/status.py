"""edgeserve status: a live per-variant view of a server, from its /metrics."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from edgeserve.cli.analysis import wilson
from edgeserve.cli.options import Token, Url
from edgeserve.cli.output import console, fail
from edgeserve.cli.scrape import Scrape, parse, shadow_agreement, variant_views
from edgeserve.client import ClientError, EdgeserveClient


def scrape(client: EdgeserveClient) -> Scrape:
    text = client.metrics_text()
    try:
        return parse(text, time.monotonic())
    except ValueError as error:
        raise ClientError(
            f"{client.url}/metrics is not Prometheus text ({error}): is --url an edgeserve server?"
        ) from None


def admin_config(url: str, token: str | None) -> dict | None:
    """The admin config when a token is given (quarantine and its reason live there)."""
    if not token:
        return None
    try:
        with EdgeserveClient(url, token) as client:
            return client.config()
    except ClientError:
        return None


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.1f} ms"


def feedback_lines(after: Scrape) -> list[Text]:
    """Accuracy per variant from ground-truth feedback since start, with its 95 % interval."""
    lines = []
    for variant in ("A", "B"):
        correct = after.feedback.get((variant, "correct"), 0.0)
        judged = correct + after.feedback.get((variant, "wrong"), 0.0)
        interval = wilson(correct, judged)
        if interval is not None:
            lines.append(
                Text(
                    f"accuracy {variant} {correct / judged:.1%} (95% CI {interval[0]:.1%} to "
                    f"{interval[1]:.1%}) from {judged:.0f} feedback answers"
                )
            )
    return lines


def quarantine_lines(config: dict | None) -> list[Text]:
    if config is None or not config.get("quarantine"):
        return []
    reason = config["quarantine"].get("reason")
    return [Text(f"B quarantined (no user traffic): {reason}", style="bold red")]


def frame(
    url: str,
    before: Scrape | None,
    after: Scrape,
    problem: str | None = None,
    config: dict | None = None,
) -> Group:
    """One refresh of the view: a row per variant and a line of fleet-wide facts."""
    stamp = datetime.now().strftime("%H:%M:%S")
    table = Table(
        title=f"edgeserve {url}  generation {after.generation}  {stamp}", title_justify="left"
    )
    for heading in ("variant", "model", "weight", "traffic", "req/s", "errors", "p50", "p95"):
        table.add_column(heading, justify="left" if heading in ("variant", "model") else "right")
    for view in variant_views(before, after):
        table.add_row(
            view.variant,
            view.model or "(none)",
            _percent(view.weight),
            _percent(view.traffic),
            f"{view.rps:.1f}",
            _percent(view.error_rate),
            _ms(view.p50),
            _ms(view.p95),
        )
    agreement, compared = shadow_agreement(after)
    window = f"{after.at - before.at:.1f}s" if before is not None else "-"
    facts = Text(
        f"shadow agreement {_percent(agreement)} of {compared} comparisons · "
        f"canary rollbacks {after.rollbacks:g} · rates over the last {window}",
        style="dim",
    )
    parts: list = [table, facts, *feedback_lines(after), *quarantine_lines(config)]
    if problem:
        parts.append(Text(f"last refresh failed: {problem}", style="bold red"))
    return Group(*parts)


def status_command(
    url: Url = None,
    token: Token = None,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, max=3600, help="Seconds between refreshes.")
    ] = 1.0,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many frames (default: Ctrl-C).")
    ] = None,
) -> None:
    """Live traffic share, requests/s, errors, latency and shadow agreement per variant."""
    url = url or ""
    frames = 1 if once else count
    with EdgeserveClient(url) as client:
        try:
            before = scrape(client)
            time.sleep(interval)  # rates need a second scrape
            after = scrape(client)
        except ClientError as error:
            fail(error.message)
        except KeyboardInterrupt:
            return
        if frames == 1:
            console.print(frame(url, before, after, config=admin_config(url, token)))
            return
        _live(client, url, before, after, interval, frames)


def _live(client, url, before, after, interval, frames) -> None:
    shown = 1
    with Live(frame(url, before, after), console=console, auto_refresh=False) as live:
        try:
            while frames is None or shown < frames:
                time.sleep(interval)
                try:
                    before, after = after, scrape(client)
                    live.update(frame(url, before, after), refresh=True)
                except ClientError as error:  # keep watching: the server may be restarting
                    live.update(frame(url, before, after, error.message), refresh=True)
                shown += 1
        except KeyboardInterrupt:
            pass
