"""The edgeserve command line: it only parses, delegates and renders."""

from __future__ import annotations

import typer

from edgeserve.cli.infer import infer_command
from edgeserve.cli.serve import serve_command

app = typer.Typer(
    name="edgeserve",
    help="Serve ONNX image classifiers with safe A/B, shadow and canary rollouts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command("serve")(serve_command)
app.command("infer")(infer_command)


def main() -> None:
    app()
