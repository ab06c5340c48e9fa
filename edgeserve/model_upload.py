"""What `edgeserve admin push` sends: a model file's sidecar and bytes, and the bytes' sha256.

The body follows POST /admin/uploads (server/upload.py): the sidecar's bytes, then the ONNX
bytes, read from disk as they are sent. The sidecar defaults to the one beside the model, so
the server computes the very version `edgeserve models inspect` shows for the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from edgeserve.inference.metadata import sidecar_path
from edgeserve.inference.signature import read_signature
from edgeserve.inference.version import bytes_sha256

CHUNK_BYTES = 1_048_576


class UnreadableUpload(Exception):
    """A model or sidecar file the CLI cannot read; the message names it."""


@dataclass(frozen=True)
class ModelUpload:
    model: Path
    sidecar: bytes
    sha256: str
    """Of the model's bytes, as read before sending: the server refuses bytes that differ."""
    size: int
    signature: str | None
    """The hex signature in `<model>.sig` (edgeserve models sign), if there is one."""

    @classmethod
    def of(cls, model: Path, sidecar: Path | None = None) -> ModelUpload:
        sidecar = sidecar if sidecar is not None else sidecar_path(model)
        try:
            sha256 = bytes_sha256(model)
            described = sidecar.read_bytes() if sidecar.is_file() else b""
        except OSError as error:
            raise UnreadableUpload(
                f"cannot read {error.filename} ({error.strerror}): give an .onnx file "
                "(and its sidecar JSON) that exist"
            ) from None
        return cls(model, described, sha256, model.stat().st_size, read_signature(model))

    def query(self) -> dict[str, str]:
        query = {"name": self.model.name, "sha256": self.sha256}
        query["sidecar_bytes"] = str(len(self.sidecar))
        if self.signature:
            query["signature"] = self.signature
        return query

    def content_length(self) -> int:
        return len(self.sidecar) + self.size

    def body(self) -> Iterator[bytes]:
        if self.sidecar:
            yield self.sidecar
        with self.model.open("rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                yield chunk
