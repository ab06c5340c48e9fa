"""Models shared by a fleet through Redis (STATE_URL): content-addressed chunks, fetched and
verified by hash by any instance that lacks a version.

`edgeserve:blob:<sha256>:<n>` hold a model's ONNX bytes in CHUNK_BYTES pieces, named by the
bytes' sha256 (the same bytes under two versions are stored once). `edgeserve:model:<version>`
is a hash {name, sha256, size, chunks, sidecar, signature, stored_at}, written last: a version
with a manifest is complete. A fetch streams the chunks into the model store's staging folder,
checks the bytes' sha256 and the version the bytes and sidecar make, and keeps them only then,
so a blob altered in Redis is refused (422 model_changed) and nothing changes. The signature
travels along and is checked at load like any other (MODEL_TRUSTED_KEYS).
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import redis
from redis import exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from edgeserve.errors import ModelLoadError, StateUnavailable, one_line
from edgeserve.inference.metadata import sidecar_path
from edgeserve.inference.signature import read_signature, signature_path
from edgeserve.inference.version import bytes_sha256, version_of
from edgeserve.observability.logging import log
from edgeserve.state.model_store import ModelStore
from edgeserve.state.redis_store import SOCKET_TIMEOUT_SECONDS
from edgeserve.state.schema import SlotModel

CHUNK_BYTES = 1_048_576
CHUNK_TIMEOUT_SECONDS = 10.0
"""A chunk is a megabyte: longer than the state's half second, still bounded. Every other call
takes the state's timeout, so a Redis that hangs costs an admin call about that, as before."""
UNREACHABLE = (exceptions.RedisError, OSError)
CHUNK_KEY = re.compile(r"edgeserve:blob:([0-9a-f]{64}):[0-9]+")
ORPHAN_PREFIX = "blob:"
"""`collect` answers chunks no manifest named as `blob:<sha256>`, apart from the versions."""

DELETE_IDLE = """
local removed = 0
for _, key in ipairs(KEYS) do
  local idle = redis.call('OBJECT', 'IDLETIME', key)
  if idle and idle >= tonumber(ARGV[1]) then
    removed = removed + redis.call('DEL', key)
  end
end
return removed
"""
"""Deletes each key only if its idle time is at least ARGV[1] seconds, checked and deleted in
one step: a chunk another pod rewrites between gc's look and its delete is left alone."""
IDLE_CLOCK_SECONDS = 1
"""Redis's LRU clock ticks in whole seconds, so OBJECT IDLETIME may read one more than the time
since the last access: what must be older than the grace has to read that much more."""


def connect(url: str, timeout: float) -> redis.Redis:
    """A blocking client that gives up after `timeout` per answer, retrying a dropped pooled
    connection once at most (as the state's client does, state.redis_store.connect)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1, supported_errors=(exceptions.ConnectionError,)),
    )


def manifest_key(version: str) -> str:
    return f"edgeserve:model:{version}"


def chunk_key(sha256: str, index: int) -> str:
    return f"edgeserve:blob:{sha256}:{index}"


def short(entry: str) -> str:
    """A `collect` entry as reports show it: a version's or unnamed bytes' first 12 hex."""
    if entry.startswith(ORPHAN_PREFIX):
        return ORPHAN_PREFIX + entry.removeprefix(ORPHAN_PREFIX)[:12]
    return entry[:12]


class SharedModels:
    def __init__(self, url: str, store: ModelStore):
        self.redis = connect(url, SOCKET_TIMEOUT_SECONDS)
        self.chunks = connect(url, CHUNK_TIMEOUT_SECONDS)
        self.store = store
        self.delete_idle = self.redis.register_script(DELETE_IDLE)

    def share(self, kept: SlotModel) -> None:
        """Put a kept model in Redis once (blocking: run it in a thread). Refused with 503
        state_unavailable when Redis cannot take it: the fleet could not load it, and the
        chunks this attempt wrote are deleted again (best effort) unless a manifest names them."""
        path = Path(kept.path)
        written: list[str] = []
        sha256 = ""
        try:
            if self.redis.exists(manifest_key(kept.version)):
                return
            sha256 = bytes_sha256(path)
            chunks, size = self._put_chunks(path, sha256, written)
            sidecar = sidecar_path(path)
            manifest = {
                "name": path.name,
                "sha256": sha256,
                "size": size,
                "chunks": chunks,
                "sidecar": sidecar.read_bytes() if sidecar.is_file() else b"",
                "signature": read_signature(path) or "",
                "stored_at": time.time(),
            }
            self.redis.hset(manifest_key(kept.version), mapping=manifest)
        except UNREACHABLE as error:
            self._discard(sha256, written)
            raise StateUnavailable(
                f"cannot share model {path.name} with the fleet through Redis "
                f"({one_line(error, limit=200)}): nothing changed; retry once Redis is back"
            ) from None

    def _put_chunks(self, path: Path, sha256: str, written: list[str]) -> tuple[int, int]:
        chunks, size = 0, 0
        with path.open("rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                key = chunk_key(sha256, chunks)
                # Named before the write: a write that timed out may still have landed.
                written.append(key)
                self.chunks.set(key, chunk)
                chunks, size = chunks + 1, size + len(chunk)
        return chunks, size

    def _discard(self, sha256: str, written: list[str]) -> None:
        """Delete the chunks a refused share wrote: no manifest will name them, yet they hold
        Redis memory. Kept when a manifest names the same bytes (other versions read them).
        Best effort: the share's own error is what the caller answers."""
        if not written:
            return
        try:
            if sha256 in self._named_bytes():
                return
            self.redis.delete(*written)
        except UNREACHABLE as error:
            log.warning(
                "shared_model_cleanup_failed",
                sha256=sha256[:12],
                chunks=len(written),
                error=one_line(error, limit=200),
            )

    def _named_bytes(self) -> set[str]:
        """The sha256 of the bytes every manifest in Redis names."""
        named: set[str] = set()
        for key in self.redis.scan_iter(match=manifest_key("*")):
            sha256 = self.redis.hget(key, "sha256")
            if sha256:
                named.add(sha256.decode())
        return named

    def fetch(self, version: str) -> Path | None:
        """This host's kept copy of `version`, fetched from Redis and verified; None when
        Redis holds no such version or cannot be reached (blocking: run it in a thread)."""
        try:
            manifest = self.redis.hgetall(manifest_key(version))
            if not manifest:
                return None
            return self._fetch(version, {k.decode(): v for k, v in manifest.items()})
        except exceptions.RedisError as error:
            log.warning("shared_model_unreachable", version=version[:12], error=one_line(error))
            return None
        except OSError as error:  # this host's store: full (507) or not writable (503)
            raise self.store.refusal(version[:12], error) from None

    def _fetch(self, version: str, manifest: dict[str, bytes]) -> Path:
        name = Path(manifest["name"].decode()).name
        with self.store.staging() as staging:
            staged = staging / name
            digest = hashlib.sha256()
            with staged.open("wb") as sink:
                for index in range(int(manifest["chunks"])):
                    chunk = self.chunks.get(chunk_key(manifest["sha256"].decode(), index)) or b""
                    digest.update(chunk)
                    sink.write(chunk)
            if manifest["sidecar"]:
                sidecar_path(staged).write_bytes(manifest["sidecar"])
            if manifest["signature"]:
                signature_path(staged).write_bytes(manifest["signature"] + b"\n")
            if version_of(digest.hexdigest(), sidecar_path(staged)) != version:
                log.error("shared_model_altered", version=version[:12], model=name)
                raise ModelLoadError(
                    f"model {name} ({version[:12]}) fetched from Redis is not the version its "
                    "name says: its bytes or sidecar were altered there; it was not kept. "
                    "Push the model again",
                    code="model_changed",
                )
            kept, _created = self.store.settle(staged)
        log.info("shared_model_fetched", version=version[:12], model=name)
        return Path(kept.path)

    def collect(self, reasons: dict[str, str], grace_seconds: float, *, dry_run: bool) -> list[str]:
        """Remove the manifests retention lets go, and their chunks unless a manifest that
        stays names the same bytes; then the chunks no manifest names (a share cut off part
        way) once untouched for `grace_seconds`. Answers the versions removed and, as
        `blob:<sha256>`, the unnamed bytes removed (or, with `dry_run`, that would be)."""
        now = time.time()
        removed: dict[str, str] = {}
        named: set[str] = set()
        for key in self.redis.scan_iter(match=manifest_key("*")):
            version = key.decode().rsplit(":", 1)[1]
            sha256, stored_at = (
                v.decode() if v else "" for v in self.redis.hmget(key, "sha256", "stored_at")
            )
            young = bool(stored_at) and now - float(stored_at) < grace_seconds
            if version in reasons or young:
                named.add(sha256)
            else:
                removed[version] = sha256
        if not dry_run:
            for version, sha256 in removed.items():
                self.redis.delete(manifest_key(version))
                if sha256 not in named:
                    for key in self.redis.scan_iter(match=chunk_key(sha256, 0)[:-1] + "*"):
                        self.redis.delete(key)
        orphans = self._orphans(named | set(removed.values()), grace_seconds)
        if not dry_run:
            for keys in orphans.values():
                self.delete_idle(keys=keys, args=[grace_seconds + IDLE_CLOCK_SECONDS])
        return [*removed, *(ORPHAN_PREFIX + sha256 for sha256 in orphans)]

    def _orphans(self, named: set[str], grace_seconds: float) -> dict[str, list[str]]:
        """Chunk keys per sha256 no manifest names and none of them touched for
        `grace_seconds`. Redis keeps no creation time; OBJECT IDLETIME counts from the last read
        or write, so past its clock's second it never exceeds the time since the write and errs
        towards keeping: a share in progress has just written a chunk, a read only makes a chunk
        look younger, and only a fetch reads chunks, through a manifest. Needs no write, so it
        works on a Redis at maxmemory. Under an LFU policy Redis tracks no idle time: nothing
        is taken then."""
        found: dict[str, list[str]] = {}
        for key in self.redis.scan_iter(match=chunk_key("*", 0)[:-1] + "*"):
            match = CHUNK_KEY.fullmatch(key.decode())
            if match and match[1] not in named:
                found.setdefault(match[1], []).append(key.decode())
        orphans: dict[str, list[str]] = {}
        for sha256, keys in found.items():
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.object("idletime", key)
            try:
                idle = [i for i in pipe.execute() if i is not None]  # None: deleted meanwhile
            except exceptions.ResponseError as error:
                log.warning("shared_orphans_not_collected", error=one_line(error, limit=200))
                return {}
            if idle and min(idle) >= grace_seconds + IDLE_CLOCK_SECONDS:
                orphans[sha256] = keys
        return orphans

    def close(self) -> None:
        self.redis.close()
        self.chunks.close()
