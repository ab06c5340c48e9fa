"""edgeserve disagreements: the inputs A and B answered differently (CAPTURE_DISAGREEMENTS),
read through one server's admin API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from edgeserve.cli.fleet import Call, call_one
from edgeserve.cli.helpstyle import App
from edgeserve.cli.options import AsJson, Token, Url
from edgeserve.cli.output import console, emit_json, fail, warning_line
from edgeserve.client import EdgeserveClient

disagreements_app = App(
    help="Look at the inputs A and B disagreed on (kept with CAPTURE_DISAGREEMENTS=N).",
    no_args_is_help=True,
)
Id = Annotated[str, typer.Argument(help="A disagreement's id, as 'disagreements list' shows it.")]
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg"}


def ask(url: str | None, token: str | None, call: Call) -> dict[str, Any]:
    """One call on one server; a failure is one line and exit 1."""
    outcome = call_one(url or "", token, call)
    if outcome.error is not None:
        fail(outcome.error.message)
    assert outcome.data is not None
    return outcome.data


def captured(url: str | None, token: str | None, limit: int | None = None) -> dict[str, Any]:
    """The list, newest first (at most `limit`), with each capture's image bytes under
    `images`."""

    def with_images(client: EdgeserveClient) -> dict[str, Any]:
        listed = client.disagreements()
        records = listed["disagreements"][:limit]
        images = [client.disagreement_image(record["id"]) for record in records]
        return {**listed, "disagreements": records, "images": images}

    return warn_if_off(url, ask(url, token, with_images))


def warn_if_off(url: str | None, data: dict[str, Any]) -> dict[str, Any]:
    if not data["capture"]["enabled"] and not data["disagreements"]:
        warning_line(
            f"capture is off on {url}: start it with CAPTURE_DISAGREEMENTS=N "
            "(these are users' images: see the runbook)"
        )
    return data


def top(answer: dict[str, Any]) -> str:
    predictions = answer["predictions"]
    return f"{predictions[0]['label']} {predictions[0]['score']:.2f}" if predictions else "-"


@disagreements_app.command("list")
def list_command(url: Url = None, token: Token = None, as_json: AsJson = False) -> None:
    """The captured disagreements, newest first: time, trace id, A's and B's top answers."""
    data = warn_if_off(url, ask(url, token, lambda client: client.disagreements()))
    if as_json:
        emit_json(data)
        return
    table = Table(title=f"disagreements on {url}", title_justify="left")
    for column in ("id", "time", "trace id", "A", "B"):
        table.add_column(column)
    for record in data["disagreements"]:
        table.add_row(
            record["id"], record["time"], record["trace_id"], top(record["a"]), top(record["b"])
        )
    console.print(table)
    console.print(f"{data['count']} kept (at most {data['capture']['max_count']})")


@disagreements_app.command("show")
def show_command(
    disagreement_id: Id, url: Url = None, token: Token = None, as_json: AsJson = False
) -> None:
    """One disagreement: time, trace id, both versions and both ranked answers."""
    record = ask(url, token, lambda client: client.disagreement(disagreement_id))
    record.pop("image_b64")
    if as_json:
        emit_json(record)
        return
    table = Table(title=f"disagreement {record['id']}", title_justify="left")
    table.add_column("rank", justify="right")
    for side in ("a", "b"):
        table.add_column(f"{side.upper()} ({record[side]['version']})")
    ranked = zip(record["a"]["predictions"], record["b"]["predictions"], strict=False)
    for rank, (a, b) in enumerate(ranked, start=1):
        table.add_row(str(rank), f"{a['label']} {a['score']:.4f}", f"{b['label']} {b['score']:.4f}")
    console.print(table)
    console.print(f"time {record['time']}, trace id {record['trace_id']}")
    console.print(f"image {record['image']['media_type']}, {record['image']['bytes']} bytes")


@disagreements_app.command("export")
def export_command(
    folder: Annotated[Path, typer.Argument(help="Where to write ID.json and the image of each.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Write every disagreement to FOLDER: its record as ID.json beside its image file."""
    data = captured(url, token)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for record, image in zip(data["disagreements"], data["images"], strict=True):
            extension = EXTENSIONS.get(record["image"]["media_type"], "bin")
            (folder / f"{record['id']}.{extension}").write_bytes(image)
            (folder / f"{record['id']}.json").write_text(json.dumps(record, indent=2) + "\n")
    except OSError as error:
        fail(f"cannot write to {folder} ({error.strerror or error}): give a writable folder")
    console.print(f"exported {len(data['disagreements'])} disagreements to {folder}")


@disagreements_app.command("sheet")
def sheet_command(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The PNG file to write.", show_default=False)
    ],
    columns: Annotated[int, typer.Option(min=1, max=50, help="Tiles per row.")] = 6,
    limit: Annotated[int, typer.Option(min=1, help="The newest this many.")] = 60,
    url: Url = None,
    token: Token = None,
) -> None:
    """Draw a contact sheet: each input's picture captioned with A's and B's answers."""
    from edgeserve.cli.contact_sheet import Tile, draw_sheet

    data = captured(url, token, limit)
    if not data["disagreements"]:
        fail(f"no captured disagreements on {url}: nothing to draw")
    tiles = [Tile(r, i) for r, i in zip(data["disagreements"], data["images"], strict=True)]
    try:
        draw_sheet(tiles, columns).save(output, format="PNG")
    except OSError as error:
        fail(f"cannot write {output} ({error.strerror or error}): give a writable path")
    console.print(f"contact sheet of {len(tiles)} disagreements: {output}")
