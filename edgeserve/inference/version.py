"""A model version: the identity of what answers, not only of the bytes that answer.

It is a sha256 over the ONNX bytes' sha256 and the description beside them (the sidecar's
keys, in a canonical form): the same bytes described another way answer differently, so they
are another version. The model's own metadata is inside its bytes and the defaults are this
release's, so bytes and sidecar fix every resolved preprocessing value, label and output kind.
Shown as its first 12 hex characters.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from edgeserve.inference.description.sources import read_sidecar

HASH_READ_BYTES = 1 << 20


def bytes_sha256(path: Path) -> str:
    """The sha256 of the file's bytes, in hex, read a MiB at a time: one half of a version.
    OSError as it comes: each caller says what an unreadable file means to it."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as source:
        while chunk := source.read(HASH_READ_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def described_version(bytes_sha256: str, description: dict[str, Any]) -> str:
    """The full version (64 hex) of bytes with this sha256, described by `description`."""
    canonical = json.dumps(description, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(f"{bytes_sha256}\n{canonical}".encode()).hexdigest()


def version_of(bytes_sha256: str, sidecar: Path) -> str:
    """The full version of bytes with this sha256 and the sidecar at `sidecar` (or none)."""
    return described_version(bytes_sha256, read_sidecar(sidecar))
