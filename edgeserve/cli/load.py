"""edgeserve load report: summarise a k6 JSON stream and plot its latency over time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from edgeserve.cli.helpstyle import App
from edgeserve.cli.output import USAGE_ERROR, console, fail

load_app = App(help="Read k6 load-test results.", no_args_is_help=True)


@load_app.command("report")
def report_command(
    results: Annotated[Path, typer.Argument(help="A k6 JSON stream (k6 run --out json=FILE).")],
    plot: Annotated[
        Path | None, typer.Option(help="Where to write the latency PNG (default: FILE.png).")
    ] = None,
    no_plot: Annotated[bool, typer.Option("--no-plot", help="Skip the PNG.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Requests/s, p50/p95/p99 and errors, overall and per variant where tagged."""
    from edgeserve.loadtest.report import ReportError, plot_latency, read_series, summaries

    if not results.is_file():
        fail(
            f"results file {results} does not exist: run k6 with --out json={results}", USAGE_ERROR
        )
    try:
        with open(results, encoding="utf-8") as stream:
            groups = read_series(stream)
        rows = summaries(groups)
        picture = None if no_plot else plot_latency(groups, plot or results.with_suffix(".png"))
    except ReportError as error:
        fail(f"{results}: {error}")
    except OSError as error:
        fail(f"cannot read {results}: {error.strerror or error}")
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "summaries": [row.to_dict() for row in rows],
                    "plot": str(picture) if picture else None,
                }
            )
        )
        return
    table = Table(title=f"k6 results: {results}")
    for column in ("group", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors"):
        table.add_column(column, justify="left" if column == "group" else "right")
    for row in rows:
        table.add_row(
            row.group,
            str(row.requests),
            f"{row.requests_per_second:.1f}",
            f"{row.p50_ms:.2f}",
            f"{row.p95_ms:.2f}",
            f"{row.p99_ms:.2f}",
            f"{row.errors} ({row.error_rate:.1%})",
        )
    console.print(table)
    if picture is not None:
        console.print(f"latency plot: {picture}")
