"""Rich tables for predictions, configs, fleet rows and checks; no I/O besides building them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from edgeserve.cli.fleet import Outcome, served
from edgeserve.variants import VARIANTS, WEIGHT_FIELDS, share, weights_of


def percent_cell(value: float | None) -> str:
    """A share as a percentage, or "-" when there is none."""
    return "-" if value is None else f"{value:.1%}"


def ms_cell(seconds: float | None, decimals: int = 1) -> str:
    """Seconds shown in milliseconds, or "-" when there are none."""
    return "-" if seconds is None else f"{seconds * 1000:.{decimals}f} ms"


def score_bar(score: float, width: int = 20) -> str:
    filled = max(0, min(width, round(score * width)))
    return "█" * filled + "·" * (width - filled)


def predictions_table(title: str, predictions: Sequence[dict[str, Any]]) -> Group:
    """A heading line (it may be long: a path and a version) and the ranked labels."""
    table = Table()
    table.add_column("label")
    table.add_column("score", justify="right")
    table.add_column("")
    for prediction in predictions:
        score = float(prediction["score"])
        table.add_row(str(prediction["label"]), f"{score:.3f}", score_bar(score))
    return Group(Text(title, style="bold"), table)


def traffic_split(config: dict[str, Any]) -> str:
    """A's and B's shares of traffic, "90% / 10%", from a config's raw weights."""
    weights = weights_of(config)
    return " / ".join(f"{share(weights, variant):.0%}" for variant in VARIANTS)


def on_off(value: Any) -> str:
    return "on" if value else "off"


def model_cell(model: dict[str, Any] | None) -> str:
    if not model:
        return "(none)"
    return f"{model.get('name')} {model.get('version')}"


def config_table(url: str, config: dict[str, Any]) -> Table:
    """One instance's config, a setting per row."""
    table = Table(title=f"config of {url}", title_justify="left", show_header=False)
    table.add_column("setting", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    models = config.get("models") or {}
    weights = weights_of(config)
    for variant, key in WEIGHT_FIELDS.items():
        table.add_row(
            f"weight {variant}", f"{config[key]:g} ({share(weights, variant):.0%} of traffic)"
        )
    table.add_row("shadow", on_off(config.get("shadow_enabled")))
    table.add_row("canary", on_off(config.get("canary_enabled")))
    table.add_row("sticky cookie", on_off(config.get("sticky_cookie")))
    for variant in VARIANTS:
        model = models.get(variant)
        path = f"  {model['path']}" if model and model.get("path") else ""
        table.add_row(f"model {variant}", model_cell(model) + path)
    table.add_row("generation", str(config.get("generation")))
    table.add_row("last rollback", config.get("last_rollback") or "none")
    return table


def toggles(config: dict[str, Any]) -> str:
    names = [
        name
        for name, key in (
            ("shadow", "shadow_enabled"),
            ("canary", "canary_enabled"),
            ("sticky", "sticky_cookie"),
        )
        if config.get(key)
    ]
    return " ".join(names) or "-"


def config_row(config: dict[str, Any]) -> list[str]:
    return [
        traffic_split(config),
        toggles(config),
        str(config.get("generation")),
        config.get("last_rollback") or "-",
    ]


CONFIG_COLUMNS = ["traffic A / B", "on", "gen", "last rollback"]


def failure_cell(outcome: Outcome) -> Text:
    """A short word for a failed instance; the full message is printed below the table."""
    error = outcome.error
    if error is None or error.unreachable:
        return Text("unreachable" if error else "failed", style="bold red")
    return Text(f"failed ({error.status})", style="bold red")


def instances_table(
    title: str,
    columns: Sequence[str],
    outcomes: Sequence[Outcome],
    row: Callable[[dict[str, Any]], list[str]],
) -> Table:
    """A row per instance: its result columns, or the one-line error that stopped it."""
    table = Table(title=title, title_justify="left")
    table.add_column("instance", no_wrap=True)
    table.add_column("result", no_wrap=True, min_width=11)
    for column in columns:
        table.add_column(column)
    for outcome in outcomes:
        if outcome.ok and outcome.data is not None:
            table.add_row(outcome.url, Text("ok", style="green"), *row(outcome.data))
        else:
            table.add_row(outcome.url, failure_cell(outcome))
    return table


def readback_table(readback: Sequence[Outcome], differing: dict[str, Any]) -> Table:
    """Generation and models per instance after the change; differing columns in yellow."""
    table = Table(title="read back", title_justify="left")
    table.add_column("instance", no_wrap=True)
    columns = {"generation": "generation", **{v: f"model {v}" for v in VARIANTS}}
    for field, heading in columns.items():
        table.add_column(heading, style="yellow" if field in differing else None)
    for outcome in readback:
        if outcome.ok and outcome.data is not None:
            view = served(outcome.data)
            models = [view[variant] or "" for variant in VARIANTS]
            table.add_row(outcome.url, str(view["generation"]), *models)
        else:
            table.add_row(outcome.url, failure_cell(outcome))
    return table


def checks_table(url: str, checks: Sequence[Any]) -> Table:
    """A pass/fail row per smoke check."""
    table = Table(title=f"smoke test of {url}", title_justify="left")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail")
    styles = {"pass": "green", "fail": "bold red", "skip": "dim"}
    for check in checks:
        table.add_row(
            check.name, Text(check.result.upper(), style=styles[check.result]), check.detail
        )
    return table
