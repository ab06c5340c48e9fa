"""The edgeserve command line: it only parses, delegates and renders."""

from __future__ import annotations

from edgeserve.cli.admin import admin_app
from edgeserve.cli.disagreements import disagreements_app
from edgeserve.cli.errors import OneLineErrors
from edgeserve.cli.helpstyle import App
from edgeserve.cli.infer import infer_command
from edgeserve.cli.load import load_app
from edgeserve.cli.models import models_app
from edgeserve.cli.serve import serve_command
from edgeserve.cli.smoke import smoke_command
from edgeserve.cli.status import status_command
from edgeserve.cli.tls import tls_options

app = App(
    name="edgeserve",
    cls=OneLineErrors,
    help="Serve ONNX image classifiers with safe A/B, shadow and canary rollouts.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a traceback could show locals such as the admin token
    add_completion=False,
)
app.callback()(tls_options)
app.command("serve")(serve_command)
app.command("infer")(infer_command)
app.add_typer(admin_app, name="admin")
app.add_typer(models_app, name="models")
app.add_typer(disagreements_app, name="disagreements")
app.add_typer(load_app, name="load")
app.command("smoke")(smoke_command)
app.command("status")(status_command)


def main() -> None:
    app(prog_name="edgeserve")  # not "python -m edgeserve" in hints
