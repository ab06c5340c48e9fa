"""Folders a test cannot write to or fill up, for the state folder's failure paths (no tests).

Faults of the real file system, not monkeypatches: a read-only folder (chmod, or for root a
read-only bind mount) and a tiny tmpfs that is nearly full (root with the right to mount).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILL_CHUNK = 4096


@contextmanager
def read_only(folder: Path, *, or_locked_out: bool = False) -> Iterator[None]:
    """A folder no one can write to. chmod does not stop root, so root gets a read-only mount;
    root without the right to mount gets, if allowed, a folder where the state's lock file
    should be: every write then fails (root included) while reads still work."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
    elif subprocess.run(["mount", "-o", "bind,ro", str(folder), str(folder)]).returncode == 0:
        try:
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    elif or_locked_out:
        lock = folder / "state.json.lock"
        lock.unlink(missing_ok=True)
        lock.mkdir()
        try:
            yield
        finally:
            lock.rmdir()
    else:
        pytest.skip("running as root without the right to mount: cannot make a folder read-only")


@contextmanager
def tiny_filesystem(folder: Path, *, size_kib: int) -> Iterator[None]:
    """An empty tmpfs of `size_kib` mounted on `folder` (root with the right to mount)."""
    mount = ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "tmpfs", str(folder)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("mounting a tiny tmpfs needs root with the right to mount")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill_up(folder: Path, *, leave_kib: int) -> None:
    """Fill `folder`'s file system until about `leave_kib` stay free: small writes still fit,
    a large copy fails with ENOSPC."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as sink:  # unbuffered: the failing write is the last
        try:
            while True:
                sink.write(b"\0" * FILL_CHUNK)
        except OSError:
            pass  # full
    os.truncate(filler, max(0, filler.stat().st_size - leave_kib * 1024))
