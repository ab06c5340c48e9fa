"""Content-addressed model copies: the state names bytes, not a path that may change later.

Loading a model keeps a read-only copy at `<folder>/<version>/<file name>` (its sidecar JSON
beside it), where the version covers the bytes and the sidecar (inference.version): a new
sidecar for the same bytes is a new version in a folder of its own, so a kept copy is never
changed in place and a restart serves exactly what was served. Every worker, restart and
promote loads that copy, so promote moves exactly the model B served even when the operator
overwrites the original file. A copy, not a hard link:
a hard link shares the inode, and `cp new.onnx vB.onnx` overwrites in place.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edgeserve.errors import (
    EdgeserveError,
    InsufficientStorage,
    ModelLoadError,
    StateUnavailable,
)
from edgeserve.inference.metadata import sidecar_path
from edgeserve.inference.model import file_model_version, file_sha256
from edgeserve.inference.signature import signature_path
from edgeserve.inference.version import version_of
from edgeserve.observability.logging import log
from edgeserve.state.schema import SlotModel

FOLDER_NAME = "models"
STAGING_PREFIX = ".incoming-"
NO_ROOM = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def folder_beside(state_file: Path) -> Path:
    """`<state folder>/models`: the kept models live and move with the state that names them."""
    return Path(state_file).parent / FOLDER_NAME


class ModelStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def keep(self, source: Path) -> SlotModel:
        """Copy `source` (and its sidecar) in once; answers the copy and its version.

        The version is taken of the copy, so a source changing during the copy cannot give the
        kept files a version that is not theirs. A folder that cannot take the copy refuses:
        InsufficientStorage (507) when it is full, StateUnavailable (503) otherwise; the
        source itself is never named instead, since it can be overwritten later."""
        source = Path(source).resolve()
        if not source.is_file():
            raise ModelLoadError(f"model file {source} does not exist: give an .onnx file")
        try:
            return self._copy_in(source)
        except OSError as error:
            raise self.refusal(source.name, error) from None

    def refusal(self, name: str, error: OSError) -> EdgeserveError:
        """What a folder that cannot take a model answers: 507 when full, else 503."""
        why = error.strerror or type(error).__name__
        log.warning("model_store_unavailable", folder=str(self.folder), model=name, error=why)
        message = f"cannot keep a copy of model {name} in {self.folder} ({why})"
        if error.errno in NO_ROOM:
            return InsufficientStorage(f"{message}: free space there, then load the model again")
        return StateUnavailable(f"{message}: make that folder writable, then load the model again")

    def locate(self, model: SlotModel) -> Path | None:
        """The file for `model`: its path, else this host's copy of the same bytes and name."""
        named = Path(model.path)
        if named.is_file():
            return named
        local = self.folder / model.version / named.name
        return local if local.is_file() else None

    def find(self, version: str) -> SlotModel | None:
        """The kept model whose version is or starts with `version` (hex, 12 to 64 characters),
        as a push answers it; None when this host holds no such version."""
        matches = sorted(self.folder.glob(f"{version}*/*.onnx")) if self.folder.is_dir() else []
        versions = {path.parent.name for path in matches}
        if len(versions) > 1:
            raise ModelLoadError(
                f"version {version} is the start of {len(versions)} kept versions: "
                "give more of it (up to all 64 characters)"
            )
        # One version, perhaps under several names (the same bytes pushed as two files):
        # the same model whichever serves.
        return SlotModel(str(matches[0]), matches[0].parent.name) if matches else None

    def adopt(self, model: SlotModel, folder: Path) -> Path | None:
        """A file of the same name in `folder` (and its sidecar) of the very version `model`
        names, kept.

        How an instance of a fleet finds a model another instance loaded: its copy lives on that
        host, but the same file is in this host's MODEL_DIR (baked into the image, say)."""
        candidate = folder / Path(model.path).name
        if not candidate.is_file() or file_model_version(candidate) != model.version:
            return None
        try:
            return Path(self.keep(candidate).path)
        except (InsufficientStorage, StateUnavailable):
            # Served as it is (its hash is checked again at load); the state still names the
            # kept copy, so nothing it holds points at this file.
            return candidate

    def _copy_in(self, source: Path) -> SlotModel:
        with self.staging() as staging:
            staged = staging / source.name
            shutil.copyfile(source, staged)
            for beside in (sidecar_path, signature_path):
                if beside(source).is_file():
                    shutil.copyfile(beside(source), beside(staged))
            kept, _created = self.settle(staged)
        return kept

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private folder inside the store for files on their way in; removed on the way
        out whatever happened, so a copy or upload cut off halfway never becomes visible."""
        self.folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.folder))
        try:
            yield staging
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def settle(self, staged: Path, *, signature_verified: bool = False) -> tuple[SlotModel, bool]:
        """Move a complete staged model (and its sidecar and signature) into its version's
        folder; answers the kept model and whether it was new. The version is taken of the
        staged files, so it is theirs whatever the source did meanwhile.

        A signature is not part of the version: a kept model without one takes the staged one,
        and a verified one replaces what is kept (a key was rotated, or one was kept before
        MODEL_TRUSTED_KEYS was set)."""
        staged_sidecar = sidecar_path(staged)
        version = version_of(file_sha256(staged), staged_sidecar)
        target = self.folder / version / staged.name
        staged_signature = signature_path(staged)
        if staged_signature.is_file() and (
            signature_verified or not signature_path(target).exists()
        ):
            self._place(staged_signature, signature_path(target))
        if target.exists():  # a kept version is complete and never touched again
            os.utime(target.parent)  # kept or pushed again: young again for retention
            return SlotModel(str(target), version), False
        if staged_sidecar.is_file():
            self._place(staged_sidecar, sidecar_path(target))
        self._place(staged, target)  # last: a folder with its model file is complete
        return SlotModel(str(target), version), True

    @contextmanager
    def loading(self, model: SlotModel) -> Iterator[None]:
        """Keep `model`'s version folder from retention while it is loaded and until the state
        names it; 422 model_missing when retention removed it first.

        A shared flock on the folder itself, which retention must lock exclusively, without
        waiting, to remove it (`unless_loading`). A lock, because the workers are processes
        sharing the store (an in-memory set is one worker's) and the kernel drops it with the
        process that held it, so a crashed load leaves nothing behind to expire. Touching the
        folder instead would fail with MODEL_UPLOAD_GRACE_SECONDS=0, and against a gc that
        surveyed the store before the touch."""
        folder = self.folder / model.version
        try:
            held = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            raise _missing(model) from None
        try:
            fcntl.flock(held, fcntl.LOCK_SH)  # waits only while a removal renames it away
            # The folder locked must be the one still there: retention may have renamed it away
            # (and a push made a new one) between the open and the lock.
            if not _same_folder(held, folder) or not (folder / Path(model.path).name).is_file():
                raise _missing(model)
            yield
        finally:
            os.close(held)

    @staticmethod
    def _place(staged: Path, target: Path) -> None:
        """Move a staged file to its version's folder, read-only: nothing there is edited."""
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.chmod(0o444)
        os.replace(staged, target)


def _missing(model: SlotModel) -> ModelLoadError:
    return ModelLoadError(
        f"model {Path(model.path).name} (version {model.version[:12]}) was removed from this "
        "host's model store before it could load (edgeserve models gc): push or load it again",
        code="model_missing",
    )


def _same_folder(held: int, folder: Path) -> bool:
    try:
        now = folder.stat()
    except FileNotFoundError:
        return False
    locked = os.fstat(held)
    return (locked.st_dev, locked.st_ino) == (now.st_dev, now.st_ino)


@contextmanager
def unless_loading(folder: Path) -> Iterator[bool]:
    """False while a load holds the version `folder` (ModelStore.loading); while True, none
    can start to hold it, so rename it away before leaving. True for a folder already gone."""
    try:
        held = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        yield True
        return
    try:
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(held)
