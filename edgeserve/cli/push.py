"""edgeserve admin push: send a model from this machine to the servers that will load it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgeserve.cli.fleet import Outcome, run_on_each
from edgeserve.cli.options import AsJson, Token, Urls
from edgeserve.cli.output import emit_json, error_line, fail, stderr
from edgeserve.model_upload import ModelUpload, UnreadableUpload

Sidecar = Annotated[
    Path | None,
    typer.Option(
        "--sidecar",
        help="The model's description (JSON); default: the .json beside the model, if any.",
    ),
]


def read_upload(model: Path, sidecar: Path | None) -> ModelUpload:
    try:
        return ModelUpload.of(model, sidecar)
    except UnreadableUpload as error:
        fail(str(error))


def push_to_each(urls: list[str], token: str | None, upload: ModelUpload) -> list[Outcome]:
    """Push to every instance; stop with one line per instance that failed."""
    outcomes = run_on_each(urls, token, lambda client: client.push_model(upload))
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed if len(failed) > 1 else []:
        error_line(outcome.error.message if outcome.error else f"{outcome.url} failed")
    if len(failed) == 1 and len(outcomes) == 1:
        fail(failed[0].error.message if failed[0].error else "failed")
    if failed:
        fail(f"{len(failed)} of {len(urls)} instances failed: {', '.join(o.url for o in failed)}")
    for outcome in outcomes:
        data = outcome.data or {}
        kept = "kept" if data.get("created") else "already held"
        stderr.print(
            f"{outcome.url} {kept} {data.get('name')} ({data.get('bytes')} bytes) "
            f"as version {data.get('version')}"
        )
    return outcomes


def push_command(
    model: Annotated[Path, typer.Argument(help="The .onnx model file to send.")],
    sidecar: Sidecar = None,
    urls: Urls = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Send a model to the server(s), which keep it by version; prints the version."""
    outcomes = push_to_each(urls or [], token, read_upload(model, sidecar))
    if as_json:
        emit_json({"instances": [o.to_json() for o in outcomes]})
        return
    typer.echo((outcomes[0].data or {}).get("version"))
