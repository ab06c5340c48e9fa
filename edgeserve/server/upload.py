"""POST /admin/uploads: a model's bytes streamed in, checked against the hash the client
states, and kept in the model store under its version.

The body is the sidecar's bytes (`sidecar_bytes` of them, 0 without one) followed by the ONNX
bytes; `name` is the model's file name and `sha256` the hash of its ONNX bytes. The bytes go
to a staging folder as they arrive and are moved to their version's folder only once complete
and verified, so an upload cut off, refused or failed leaves nothing visible. The same model
pushed twice is kept once.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO

from sanic import Request

from edgeserve.errors import BadRequest, EdgeserveError, InvalidField, ModelLoadError
from edgeserve.inference.metadata import sidecar_path
from edgeserve.inference.signature import TrustedKeys, signature_path
from edgeserve.inference.version import version_of
from edgeserve.server.payload import query_values, refuse_encoded
from edgeserve.server.protocol import EdgeRequest
from edgeserve.state.model_store import ModelStore
from edgeserve.state.schema import SlotModel

UPLOAD_PARAMETERS = ("name", "sha256", "sidecar_bytes", "signature")
MAX_SIDECAR_BYTES = 1_048_576
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,249}\.onnx")
SHA256 = re.compile(r"[0-9a-f]{64}")
SIGNATURE = re.compile(r"[0-9a-f]{128}")


@dataclass(frozen=True)
class UploadQuery:
    name: str
    """The model's file name: what the version's folder holds and the model is called."""
    sha256: str
    """The sha256 the client states for the ONNX bytes (hex)."""
    sidecar_bytes: int
    """How many bytes at the start of the body are the sidecar JSON."""
    signature: str | None
    """Hex Ed25519 signature over the version (inference.signature), if the client sent one."""


@dataclass(frozen=True)
class Received:
    model: SlotModel
    created: bool
    """False when the store already held this version: the upload changed nothing."""
    model_bytes: int


def upload_query(request: Request) -> UploadQuery:
    values = query_values(request, UPLOAD_PARAMETERS)
    for required in ("name", "sha256"):
        if required not in values:
            raise InvalidField(
                f"the query parameter {required} is required: "
                "?name=<file>.onnx&sha256=<hex sha256 of its bytes>",
                code="missing_field",
            )
    if not MODEL_NAME.fullmatch(values["name"]):
        raise InvalidField(
            f"name must be a plain file name ending in .onnx (letters, digits, '.', '_', '-'; "
            f"up to 255 characters), got {values['name']!r}"
        )
    sha256 = values["sha256"].lower()
    if not SHA256.fullmatch(sha256):
        raise InvalidField(f"sha256 must be 64 hex characters, got {values['sha256']!r}")
    sidecar = values.get("sidecar_bytes", "0")
    if not sidecar.isdigit() or int(sidecar) > MAX_SIDECAR_BYTES:
        raise InvalidField(
            f"sidecar_bytes must be a whole number from 0 to {MAX_SIDECAR_BYTES}, got {sidecar!r}"
        )
    signature = values.get("signature", "").lower() or None
    if signature is not None and not SIGNATURE.fullmatch(signature):
        raise InvalidField(
            f"signature must be 128 hex characters (edgeserve models sign), got {signature!r}"
        )
    return UploadQuery(values["name"], sha256, int(sidecar), signature)


def too_large(limit: int) -> EdgeserveError:
    return EdgeserveError(
        f"the model is larger than MODEL_MAX_BYTES={limit}: "
        "raise MODEL_MAX_BYTES on the server to push it",
        code="payload_too_large",
    )


async def receive(
    request: EdgeRequest, store: ModelStore, limit: int, trusted_keys: TrustedKeys
) -> Received:
    """Stream the body into the store's staging folder, verify it, then keep it by version.

    A body announced larger than `limit` (plus its sidecar) is refused before it is read;
    one that grows past it while streaming is refused at that point."""
    try:
        return await _receive(request, store, limit, trusted_keys)
    except EdgeserveError:
        stop_reading(request)
        raise


def stop_reading(request: Request) -> None:
    """Answer a refusal now and close the connection: the rest of a refused body is not read
    (as protocol.py does with a stalled one)."""
    if request.stream is not None and request.stream.request_body:
        request.stream.keep_alive = False
        request.stream.request_body = None


async def _receive(
    request: EdgeRequest, store: ModelStore, limit: int, trusted_keys: TrustedKeys
) -> Received:
    wanted = upload_query(request)
    refuse_encoded(request)
    announced = request.headers.get("content-length", "")
    if announced.isdigit() and int(announced) - wanted.sidecar_bytes > limit:
        raise too_large(limit)
    try:
        return await _keep(request, store, limit, trusted_keys, wanted)
    except OSError as error:  # the store's folder, full or not writable: 507 / 503
        raise store.refusal(wanted.name, error) from None


async def _keep(
    request: EdgeRequest,
    store: ModelStore,
    limit: int,
    trusted_keys: TrustedKeys,
    wanted: UploadQuery,
) -> Received:
    with store.staging() as staging:
        staged = staging / wanted.name
        with open(staged, "wb") as sink:
            sidecar, digest, size = await _stream_body(request, sink, wanted, limit)
        if size == 0:
            raise ModelLoadError("the body holds no model bytes: send the .onnx file")
        if digest != wanted.sha256:
            raise ModelLoadError(
                f"the model's bytes have sha256 {digest}, not the stated {wanted.sha256}: "
                "the upload was altered or the hash is of another file; nothing was kept",
                code="model_hash_mismatch",
            )
        if sidecar:
            sidecar_path(staged).write_bytes(sidecar)
        # Checked before anything is kept: with MODEL_TRUSTED_KEYS, unsigned bytes stay out.
        version = version_of(digest, sidecar_path(staged))
        trusted_keys.check(wanted.signature, version, wanted.name)
        if wanted.signature is not None:
            signature_path(staged).write_text(wanted.signature + "\n", encoding="ascii")
        kept, created = await asyncio.to_thread(
            partial(store.settle, staged, signature_verified=bool(trusted_keys.keys))
        )
    return Received(kept, created, size)


def append(sink: BinaryIO, chunk: bytes) -> None:
    """Write through to the file: a full disk is seen at the chunk that fills it."""
    sink.write(chunk)
    sink.flush()


async def _stream_body(
    request: EdgeRequest, sink: BinaryIO, wanted: UploadQuery, limit: int
) -> tuple[bytes, str, int]:
    """The sidecar's bytes, and the sha256 and size of the model bytes written to `sink`."""
    sidecar = bytearray()
    digest = hashlib.sha256()
    size = 0
    while (chunk := await request.read_streamed()) is not None:
        missing = wanted.sidecar_bytes - len(sidecar)
        if missing > 0:
            sidecar += chunk[:missing]
            chunk = chunk[missing:]
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        digest.update(chunk)
        await asyncio.to_thread(append, sink, chunk)  # a slow disk must not stall the loop
    if len(sidecar) < wanted.sidecar_bytes:
        raise BadRequest(
            f"the body ended after {len(sidecar)} bytes, before the sidecar's "
            f"{wanted.sidecar_bytes} (sidecar_bytes): send the sidecar, then the model"
        )
    return bytes(sidecar), digest.hexdigest(), size
