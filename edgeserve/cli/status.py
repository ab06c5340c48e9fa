"""edgeserve status: per-variant traffic, errors and latency of one server or a fleet."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from edgeserve.cli.analysis import wilson
from edgeserve.cli.fleet import run_on_each
from edgeserve.cli.options import Token, Urls
from edgeserve.cli.output import (
    FAILURE,
    USAGE_ERROR,
    console,
    error_line,
    fail,
    stderr,
    warning_line,
)
from edgeserve.cli.render import ms_cell, percent_cell
from edgeserve.cli.scrape import (
    Pair,
    Scrape,
    ShadowCounts,
    VariantView,
    parse,
    served_pair,
    shadow_counts,
    variant_views,
)
from edgeserve.client import ClientError, EdgeserveClient
from edgeserve.traffic.paired_feedback import CORRECT, WRONG


def scrape(client: EdgeserveClient) -> Scrape:
    text = client.metrics_text()
    try:
        return parse(text, time.monotonic())
    except ValueError as error:
        raise ClientError(
            f"{client.url}/metrics is not Prometheus text ({error}): is --url an edgeserve server?"
        ) from None


def scrape_each(urls: list[str]) -> list[Scrape]:
    """A scrape of every instance, in order; the first that fails raises ClientError."""
    scrapes = []
    for url in urls:
        with EdgeserveClient(url) as client:
            scrapes.append(scrape(client))
    return scrapes


@dataclass
class Watch:
    """One instance being watched: its recent scrapes, oldest first, and the last failure."""

    url: str
    history: deque[Scrape] = field(default_factory=deque)
    problem: str | None = None
    config: dict | None = None
    """The admin config when a token is given (quarantine and its reason live there)."""
    classes: dict | None = None
    """GET /admin/shadow with --classes: A's top-1 labels against B's."""

    def baseline(self, window: float | None) -> Scrape | None:
        """The scrape about `window` seconds before the newest; None counts since the start."""
        if window is None or len(self.history) < 2:
            return None
        newest = self.history[-1].at
        older = [s for s in self.history if newest - s.at >= window * 0.9]
        return older[-1] if older else self.history[0]

    def keep(self, scraped: Scrape, window: float | None) -> None:
        self.history.append(scraped)
        while (
            window is not None
            and len(self.history) > 2
            and (scraped.at - self.history[1].at >= window)
        ):
            self.history.popleft()  # the second-oldest already covers the window
        if window is None:
            while len(self.history) > 1:
                self.history.popleft()
        self.problem = None


def refresh(
    watches: list[Watch], window: float | None, token: str | None = None, classes: bool = False
) -> None:
    """Scrape every instance at once; a failure is kept on its Watch, not raised."""

    def observe(client: EdgeserveClient) -> dict:
        return {
            "scrape": scrape(client),
            "config": admin_config(client) if token else None,
            "classes": client.shadow() if classes else None,
        }

    outcomes = run_on_each([w.url for w in watches], token, observe)
    for watch, outcome in zip(watches, outcomes, strict=True):
        if outcome.error is not None:
            watch.problem = outcome.error.message
        elif outcome.data is not None:
            watch.keep(outcome.data["scrape"], window)
            watch.config = outcome.data["config"]
            watch.classes = outcome.data["classes"]


def admin_config(client: EdgeserveClient) -> dict | None:
    """The config, or None when the admin API cannot be read (status works without it)."""
    try:
        return client.config()
    except ClientError:
        return None


LATENCY_HEADINGS = ("p50 in server", "p95 in server")
"""What p50/p95 time: an answered request from arrival to answer (decode, preprocess, model run),
not the network."""


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def traffic_table(url: str, after: Scrape, views: list[VariantView], windowed: bool) -> Table:
    """A row per variant: what it serves and how it does."""
    stamp = datetime.now().strftime("%H:%M:%S")
    table = Table(
        title=f"edgeserve {url}  generation {after.generation}  {stamp}", title_justify="left"
    )
    headings = ["variant", "model", "weight", "traffic", "requests"]
    headings += ["req/s"] if windowed else []
    for heading in (*headings, "errors", *LATENCY_HEADINGS):
        table.add_column(heading, justify="left" if heading in ("variant", "model") else "right")
    for view in views:
        cells = [view.variant, view.model or "(none)", percent_cell(view.weight)]
        cells += [percent_cell(view.traffic), f"{view.requests:g}"]
        cells += [_rate(view.rps)] if windowed else []
        cells += [percent_cell(view.error_rate), ms_cell(view.p50), ms_cell(view.p95)]
        table.add_row(*cells)
    return table


def feedback_lines(after: Scrape) -> list[Text]:
    """Accuracy per slot and the version that answered, from ground-truth feedback since the
    start, with its 95 % interval: a token counts for the version it names, even after a swap."""
    lines = []
    for variant, version in sorted(after.by_version):
        counts = after.by_version[(variant, version)]
        correct = counts.get("correct", 0.0)
        judged = correct + counts.get("wrong", 0.0)
        interval = wilson(correct, judged)
        if interval is not None:
            lines.append(
                Text(
                    f"accuracy {variant} {version} {correct / judged:.1%} (95% CI "
                    f"{interval[0]:.1%} to {interval[1]:.1%}) from {judged:.0f} feedback answers"
                )
            )
    pairs = sum(after.paired.values())
    if pairs:
        b_only = after.paired.get((WRONG, CORRECT), 0.0)
        a_only = after.paired.get((CORRECT, WRONG), 0.0)
        lines.append(
            Text(
                f"paired (A answers B shadowed): only A right {a_only:.0f}, only B right "
                f"{b_only:.0f} of {pairs:.0f} (B - A {(b_only - a_only) / pairs:+.1%})"
            )
        )
    return lines


def shadow_line(counts: ShadowCounts, pair: Pair) -> Text:
    """Agreement of the A and B served now as agree / (agree + disagree), the no-common-label
    share always beside it; a B that could name none of A's answers is said to be broken, never
    shown as no figure. Comparisons of an earlier B never count here."""
    a, b = pair
    if not b:
        return Text(f"shadow: no B to compare with A {a}", style="dim")
    if counts.broken:
        return Text(
            f"shadow: B {b} is broken: all {counts.no_common_label} comparisons had no common "
            f"label (B has no label of A {a}'s answers): check B's labels",
            style="bold red",
        )
    total = counts.compared + counts.no_common_label
    return Text(
        f"shadow agreement {percent_cell(counts.agreement)} of {counts.compared} comparisons "
        f"({counts.agree} agree, {counts.disagree} disagree) · no common label "
        f"{percent_cell(counts.no_common_label_share)} ({counts.no_common_label} of {total}) · "
        f"B {b} against A {a}",
        style="dim",
    )


def class_table(shadow: dict) -> Table:
    """A row per A label, most compared first: how often B answered something else, and what."""
    b = shadow.get("b") or {}
    table = Table(
        title=f"per-class flips since B {b.get('version', '(none)')} started: A's top-1 against "
        f"B's ({shadow.get('max_classes')} labels by name, the rest 'other')",
        title_justify="left",
    )
    for heading in ("A answered", "compared", "B changed", "flip rate", "B answered"):
        table.add_column(heading, justify="left" if "answered" in heading else "right")
    for row in shadow.get("classes", []):
        answers = ", ".join(f"{label} {count}" for label, count in row["b_labels"].items())
        table.add_row(
            row["a_label"],
            str(row["compared"]),
            str(row["changed"]),
            percent_cell(row["flip_rate"]),
            answers,
        )
    return table


def quarantine_lines(config: dict | None) -> list[Text]:
    if config is None or not config.get("quarantine"):
        return []
    reason = config["quarantine"].get("reason")
    return [Text(f"B quarantined (no user traffic): {reason}", style="bold red")]


def instance_view(watch: Watch, window: float | None) -> list[RenderableType]:
    """The blocks shown for one instance; a new concern adds a block here."""
    if not watch.history:
        return [Text(f"{watch.url}: {watch.problem}", style="bold red")]
    before, after = watch.baseline(window), watch.history[-1]
    views = variant_views(before, after)
    span = (
        "since the server started"
        if before is None
        else f"over the last {after.at - before.at:.1f}s"
    )
    parts: list[RenderableType] = [
        traffic_table(watch.url, after, views, windowed=before is not None),
        shadow_line(shadow_counts(after, before), served_pair(after)),
        Text(f"canary rollbacks {after.rollbacks:g} · figures {span}", style="dim"),
    ]
    parts += [*feedback_lines(after), *quarantine_lines(watch.config)]
    if watch.classes is not None:
        parts.append(class_table(watch.classes))
    if not any(view.requests for view in views):
        parts.append(Text(f"no inference traffic {span}", style="yellow"))
    if watch.problem:
        parts.append(Text(f"last refresh failed: {watch.problem}", style="bold red"))
    return parts


def frame(watches: list[Watch], window: float | None) -> Group:
    """One refresh of the view: the blocks of every instance, in --url order."""
    return Group(*[part for watch in watches for part in instance_view(watch, window)])


def status_command(
    urls: Urls = None,
    token: Token = None,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    measure: Annotated[
        float | None,
        typer.Option(
            min=0.1,
            max=3600,
            show_default="since the server started",
            help="Measure for SECONDS, then show figures over the last SECONDS: the server "
            "keeps only totals since it started, so the first frame waits this long.",
        ),
    ] = None,
    window: Annotated[
        float | None, typer.Option(min=0.1, max=3600, hidden=True, help="Old name of --measure.")
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.1, max=3600, help="Seconds between refreshes.")
    ] = 1.0,
    count: Annotated[
        int | None, typer.Option(min=1, help="Stop after this many frames (default: Ctrl-C).")
    ] = None,
    classes: Annotated[
        bool,
        typer.Option(
            "--classes",
            help="Also show A's top-1 labels against B's since B started (needs --token).",
        ),
    ] = False,
) -> None:
    """Traffic share, requests, errors, latency and shadow agreement per slot, model version
    and instance."""
    window = measured_seconds(measure, window)
    if classes and not token:
        fail(
            "--classes reads GET /admin/shadow, which needs the admin token: "
            "pass --token or set ADMIN_TOKEN",
            USAGE_ERROR,
        )
    watches = [Watch(url) for url in urls or []]
    frames = 1 if once else count
    try:
        refresh(watches, window, token, classes)
        if window is not None and any(w.history for w in watches):
            stderr.print(f"measuring {window:g} s of traffic (the server keeps no history)")
            time.sleep(window)  # figures over a window need a scrape at each end
            refresh(watches, window, token, classes)
    except KeyboardInterrupt:
        return
    down = [w for w in watches if w.problem]
    for watch in down:
        error_line(str(watch.problem))
    if len(down) == len(watches):
        raise typer.Exit(FAILURE)
    if frames == 1:
        console.print(frame([w for w in watches if w.history], window))
        if down:
            raise typer.Exit(FAILURE)
        return
    _live(watches, window, interval, frames, token, classes)


def measured_seconds(measure: float | None, window: float | None) -> float | None:
    """--measure, or its old name --window (kept for scripts), which did the same: it waited
    rather than looked back, as its name let an operator expect."""
    if window is None:
        return measure
    if measure is not None:
        fail("--window is the old name of --measure: give only --measure", USAGE_ERROR)
    warning_line(
        f"--window {window:g} waits {window:g} s to measure (the server keeps no history to "
        "look back on): it is now called --measure"
    )
    return window


def _live(
    watches: list[Watch],
    window: float | None,
    interval: float,
    frames: int | None,
    token: str | None,
    classes: bool,
) -> None:
    shown = 1
    with Live(frame(watches, window), console=console, auto_refresh=False) as live:
        try:
            while frames is None or shown < frames:
                time.sleep(interval)
                refresh(
                    watches, window, token, classes
                )  # a failing instance keeps its last figures
                live.update(frame(watches, window), refresh=True)
                shown += 1
        except KeyboardInterrupt:
            pass
