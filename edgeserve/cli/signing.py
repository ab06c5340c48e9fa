"""edgeserve models keygen / sign: the key pair and the detached signatures MODEL_TRUSTED_KEYS
checks (inference.signature)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from edgeserve.cli.output import USAGE_ERROR, console, fail
from edgeserve.cli.push import Sidecar


def keygen_command(
    prefix: Annotated[
        Path, typer.Option("--out", help="Writes PREFIX.key (private) and PREFIX.pub (public).")
    ] = Path("model-signing"),
) -> None:
    """Make an Ed25519 key pair: sign with the .key, list the .pub in MODEL_TRUSTED_KEYS."""
    from edgeserve.inference.signature import new_key_pair

    private_file = prefix.with_name(prefix.name + ".key")
    public_file = prefix.with_name(prefix.name + ".pub")
    for file in (private_file, public_file):
        if file.exists():
            fail(f"{file} already exists: keep it, or give another --out PREFIX", USAGE_ERROR)
    private_pem, public_pem = new_key_pair()
    try:
        # The private key is readable by its owner only, from its first byte on disk.
        descriptor = os.open(private_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as sink:
            sink.write(private_pem)
        public_file.write_bytes(public_pem)
    except OSError as error:
        fail(f"cannot write {error.filename} ({error.strerror}): check the folder")
    console.print(f"wrote {private_file} (keep it secret) and {public_file}")
    console.print(f"servers: MODEL_TRUSTED_KEYS={public_file.resolve()}")


def sign_command(
    model: Annotated[Path, typer.Argument(help="The .onnx model file to sign.")],
    key: Annotated[Path, typer.Option("--key", help="The private key (edgeserve models keygen).")],
    sidecar: Sidecar = None,
) -> None:
    """Sign a model's version (bytes and sidecar); writes FILE.sig, which admin push sends."""
    from edgeserve.errors import EdgeserveError
    from edgeserve.inference.metadata import sidecar_path
    from edgeserve.inference.model import file_sha256
    from edgeserve.inference.signature import sign, signature_path
    from edgeserve.inference.version import version_of

    try:
        version = version_of(file_sha256(model), sidecar or sidecar_path(model))
        signature = sign(key.read_bytes(), version)
        signature_path(model).write_text(signature + "\n", encoding="ascii")
    except OSError as error:
        fail(f"cannot use {error.filename} ({error.strerror}): give files that exist")
    except ValueError as error:
        fail(f"{key} is not an Ed25519 private key in PEM ({error}): use edgeserve models keygen")
    except EdgeserveError as error:
        fail(error.message)
    console.print(f"wrote {signature_path(model)} for version {version[:12]}")
