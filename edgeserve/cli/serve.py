"""edgeserve serve: start the Sanic server with settings from the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from edgeserve.cli.output import USAGE_ERROR, fail, stderr
from edgeserve.settings import SettingsError, load_settings


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; surrounding quotes removed."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        if not sep or not key.strip():
            fail(f"{path}:{number} is not KEY=VALUE: fix or remove that line", USAGE_ERROR)
        values[key.strip()] = value.strip().strip("'\"")
    return values


def serve_command(
    host: Annotated[str | None, typer.Option(help="Listen address [env HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port [env PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes [env WORKERS].")] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(help="File of KEY=VALUE settings; the environment wins over it."),
    ] = None,
) -> None:
    """Serve the models in slots A and B over HTTP."""
    environ = dict(os.environ)
    if env_file is not None:
        if not env_file.is_file():
            fail(f"env file {env_file} does not exist: give an existing file", USAGE_ERROR)
        environ = {**read_env_file(env_file), **environ}
    for name, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            environ[name] = str(value)
    try:
        settings = load_settings(environ)
    except SettingsError as error:
        fail(str(error), USAGE_ERROR)
    from edgeserve.cli.banner import banner
    from edgeserve.server.serve import serve

    stderr.print(banner(settings))
    try:
        serve(settings)
    except SettingsError as error:  # found only when the state backend is opened
        fail(str(error), USAGE_ERROR)
