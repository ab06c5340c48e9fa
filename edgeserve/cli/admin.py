"""edgeserve admin: drive the admin API of one instance or a fleet (--url repeated)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from edgeserve.cli.fleet import Outcome, run_on_each, settle
from edgeserve.cli.helpstyle import App
from edgeserve.cli.options import AsJson, Token, Urls
from edgeserve.cli.output import USAGE_ERROR, console, fail, stderr, warning_line
from edgeserve.cli.push import Sidecar, push_command, push_to_each, read_upload
from edgeserve.cli.render import (
    CONFIG_COLUMNS,
    config_row,
    config_table,
    model_cell,
    traffic_split,
)
from edgeserve.cli.report import report
from edgeserve.cli.rollout import rollout_command
from edgeserve.cli.shift import shift_command
from edgeserve.variants import VARIANTS, Variant, parse_variant

admin_app = App(
    help="Drive a running server's admin API; repeat --url to act on a fleet.",
    no_args_is_help=True,
)
config_app = App(help="Read or change the runtime settings.", no_args_is_help=True)
admin_app.add_typer(config_app, name="config")
admin_app.command("shift")(shift_command)
admin_app.command("rollout")(rollout_command)
admin_app.command("push")(push_command)


def _slot(value: str) -> Variant:
    variant = parse_variant(value)
    if variant is None:
        raise typer.BadParameter(f"{value!r} is not a slot: use A or B")
    return variant


@config_app.command("get")
def config_get(urls: Urls = None, token: Token = None, as_json: AsJson = False) -> None:
    """Show weights, toggles, models and generation."""
    urls = urls or []
    outcomes = settle(urls, token, run_on_each(urls, token, lambda client: client.config()))
    single = outcomes[0]
    if len(outcomes) == 1 and single.ok and single.data is not None and not as_json:
        console.print(config_table(single.url, single.data))
        return
    report(
        "config",
        CONFIG_COLUMNS,
        config_row,
        outcomes,
        token=token,
        as_json=as_json,
        readback=outcomes,
    )


@config_app.command("set")
def config_set(
    weight_a: Annotated[
        float | None, typer.Option("--weight-a", min=0, help="Traffic weight of A (>= 0).")
    ] = None,
    weight_b: Annotated[
        float | None, typer.Option("--weight-b", min=0, help="Traffic weight of B (>= 0).")
    ] = None,
    shadow: Annotated[
        bool | None, typer.Option("--shadow/--no-shadow", help="Mirror A's traffic to B.")
    ] = None,
    canary: Annotated[
        bool | None, typer.Option("--canary/--no-canary", help="X-Canary forcing and the guard.")
    ] = None,
    sticky: Annotated[
        bool | None, typer.Option("--sticky/--no-sticky", help="Sticky assignment cookie.")
    ] = None,
    clear_quarantine: Annotated[
        bool,
        typer.Option(
            "--clear-quarantine", help="Let a B the canary guard rolled back serve again."
        ),
    ] = False,
    urls: Urls = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Change runtime settings; the ones not given stay as they are."""
    given = {
        "ab_weight_a": weight_a,
        "ab_weight_b": weight_b,
        "shadow_enabled": shadow,
        "canary_enabled": canary,
        "sticky_cookie": sticky,
    }
    fields: dict[str, Any] = {name: value for name, value in given.items() if value is not None}
    if clear_quarantine:
        fields["quarantine"] = None
    if not fields:
        fail(
            "nothing to set: give --weight-a, --weight-b, --shadow/--no-shadow, "
            "--canary/--no-canary, --sticky/--no-sticky or --clear-quarantine",
            USAGE_ERROR,
        )
    outcomes = run_on_each(urls or [], token, lambda client: client.set_config(**fields))
    report("config set", CONFIG_COLUMNS, config_row, outcomes, token=token, as_json=as_json)


def _warmup_row(data: dict[str, Any]) -> list[str]:
    runs = data.get("warmup") or {}
    cells = []
    for variant in VARIANTS:
        entry = runs.get(variant)
        cells.append(f"{entry['runs']} runs, {entry['ms']:.1f} ms" if entry else "(no model)")
    return cells


@admin_app.command("warmup")
def warmup(urls: Urls = None, token: Token = None, as_json: AsJson = False) -> None:
    """Run warm-up inferences on each loaded model."""
    outcomes = run_on_each(urls or [], token, lambda client: client.warmup())
    report("warmup", list(VARIANTS), _warmup_row, outcomes, token=token, as_json=as_json)


def _promote_row(data: dict[str, Any]) -> list[str]:
    return [model_cell(data.get("previous_a")), model_cell(data.get("new_a")), traffic_split(data)]


@admin_app.command("promote")
def promote(
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    urls: Urls = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Make B's model the new A (weights become A=1, B=0) and empty B."""
    urls = urls or []
    if not yes:
        where = ", ".join(urls)
        try:
            confirmed = typer.confirm(
                f"Promote model B to slot A on {where}? All traffic will go to it", err=True
            )
        except typer.Abort:  # no answer (stdin closed)
            stderr.print()
            confirmed = False
        if not confirmed:
            fail("not promoted: answer y to the question, or pass --yes")
    outcomes = run_on_each(urls, token, lambda client: client.promote())
    report(
        "promote",
        ["previous A", "new A", "traffic A / B"],
        _promote_row,
        outcomes,
        token=token,
        as_json=as_json,
    )


def say_load_warnings(outcomes: list[Outcome]) -> None:
    """What the server found doubtful about the model it loaded, once per distinct message
    (every instance of a fleet finds the same about the same file)."""
    seen: list[str] = []
    for outcome in outcomes:
        for message in (outcome.data or {}).get("warnings") or []:
            if message not in seen:
                seen.append(message)
                warning_line(message)


@admin_app.command("rollback")
def rollback(urls: Urls = None, token: Token = None, as_json: AsJson = False) -> None:
    """Put the A of before the last promote back in slot A (weights unchanged)."""

    def row(data: dict[str, Any]) -> list[str]:
        return [model_cell(data.get("replaced_a") or {}), model_cell(data.get("restored_a") or {})]

    outcomes = run_on_each(urls or [], token, lambda client: client.rollback())
    report("rollback", ["replaced A", "restored A"], row, outcomes, token=token, as_json=as_json)


@admin_app.command("load")
def load(
    slot: Annotated[str, typer.Argument(callback=_slot, help="Slot to load into: A or B.")],
    path: Annotated[
        str | None,
        typer.Argument(help="Model file inside the server's models folder (or use --upload)."),
    ] = None,
    upload: Annotated[
        Path | None,
        typer.Option("--upload", help="Push this model file from here first, then load it."),
    ] = None,
    sidecar: Sidecar = None,
    allow_label_change: Annotated[
        bool, typer.Option(help="Load it even though its labels differ from the other slot's.")
    ] = False,
    urls: Urls = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Hot-load a model into slot A or B; the old model serves until the new one is warm."""
    variant = slot
    urls = urls or []
    if (path is None) == (upload is None):
        fail(
            "give either PATH (a file on the server) or --upload FILE (one from here)", USAGE_ERROR
        )
    if sidecar is not None and upload is None:
        fail("--sidecar goes with --upload FILE", USAGE_ERROR)
    version = None
    if upload is not None:
        pushed = push_to_each(urls, token, read_upload(upload, sidecar))
        version = (pushed[0].data or {}).get("full_version")

    def row(data: dict[str, Any]) -> list[str]:
        loaded = data.get("loaded") or {}
        same = "" if loaded.get("changed", True) else " (already served: nothing changed)"
        return [variant, model_cell(loaded) + same, str(loaded.get("path", ""))]

    outcomes = run_on_each(
        urls,
        token,
        lambda client: client.load_model(
            variant, path, version=version, allow_label_change=allow_label_change
        ),
    )
    if not as_json:  # --json carries them in each instance's result
        say_load_warnings(outcomes)
    report(
        f"load {variant}", ["slot", "model", "path"], row, outcomes, token=token, as_json=as_json
    )
