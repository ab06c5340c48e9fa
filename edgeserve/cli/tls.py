"""--cacert, --cert and --key: how every command that talks to a server speaks HTTPS."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from edgeserve.client import TLS_VARIABLES, ClientError, tls_verify


def tls_options(
    cacert: Annotated[
        Path | None,
        typer.Option(
            "--cacert",
            envvar="EDGESERVE_CACERT",
            help="PEM CA certificate to check an https server with (default: the system's).",
        ),
    ] = None,
    cert: Annotated[
        Path | None,
        typer.Option(
            "--cert",
            envvar="EDGESERVE_CERT",
            help="PEM client certificate, for a server with TLS_CLIENT_CA_FILE (admin).",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option("--key", envvar="EDGESERVE_KEY", help="PEM private key of --cert."),
    ] = None,
) -> None:
    """Serve ONNX image classifiers with safe A/B, shadow and canary rollouts."""
    for name, value in zip(TLS_VARIABLES, (cacert, cert, key), strict=True):
        if value is not None:
            os.environ[name] = str(value)
    try:
        tls_verify()  # a missing or bad file is a usage error, said before anything is sent
    except ClientError as error:
        raise typer.BadParameter(str(error)) from None
