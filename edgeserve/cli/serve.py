"""edgeserve serve: start the Sanic server with settings from the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from edgeserve.cli.output import USAGE_ERROR, fail, stderr
from edgeserve.settings import Settings, SettingsError, load_settings


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


def layered_environment(
    environ: Mapping[str, str], from_file: Mapping[str, str], options: Mapping[str, object]
) -> dict[str, str]:
    """Options given win over the environment, which wins over the env file."""
    layered = {**from_file, **environ}
    layered.update({name: str(value) for name, value in options.items() if value is not None})
    return layered


def _env_option(variable: str, default: object, help: str) -> typer.models.OptionInfo:
    """An option that overrides a setting; its help names the variable and the default."""
    return typer.Option(help=f"{help} (overrides {variable}).", show_default=str(default))


def serve_command(
    host: Annotated[str | None, _env_option("HOST", Settings.host, "Listen address")] = None,
    port: Annotated[int | None, _env_option("PORT", Settings.port, "Listen port")] = None,
    workers: Annotated[
        int | None, _env_option("WORKERS", Settings.workers, "Worker processes")
    ] = None,
    model_a: Annotated[
        Path | None,
        typer.Option(
            "--model-a",
            help="Model file for slot A (overrides MODEL_VA_PATH); without --model-b or "
            "MODEL_VB_PATH, slot B stays empty.",
            show_default="models/vA.onnx",
        ),
    ] = None,
    model_b: Annotated[
        Path | None,
        typer.Option(
            "--model-b",
            help="Model file for slot B, the candidate (overrides MODEL_VB_PATH).",
            show_default="models/vB.onnx if no A is given, else none",
        ),
    ] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(help="File of KEY=VALUE settings; the environment wins over it."),
    ] = None,
) -> None:
    """Serve the models in slots A and B over HTTP."""
    from_file: dict[str, str] = {}
    if env_file is not None:
        if not env_file.is_file():
            fail(f"env file {env_file} does not exist: give an existing file", USAGE_ERROR)
        from_file = read_env_file(env_file)
    options = {
        "HOST": host,
        "PORT": port,
        "WORKERS": workers,
        "MODEL_VA_PATH": model_a,
        "MODEL_VB_PATH": model_b,
    }
    environ = layered_environment(os.environ, from_file, options)
    from edgeserve.server.tls import server_context

    try:
        settings = load_settings(environ)
        server_context(settings)  # a certificate or key that cannot serve: before the banner
    except SettingsError as error:
        fail(str(error), USAGE_ERROR)
    from edgeserve.cli.banner import banner
    from edgeserve.server.listener import ListenError
    from edgeserve.server.serve import serve

    try:
        serve(settings, announce=lambda state: stderr.print(banner(settings, state)))
    except SettingsError as error:  # found at start: the model pair, the state backend
        fail(str(error), USAGE_ERROR)
    except ListenError as error:
        fail(str(error))
