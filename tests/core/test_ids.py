"""Per-request ids: the right shapes, unique, and made without a system call each."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from edgeserve.ids import hex_id, urlsafe_id
from edgeserve.server.tracing import trace_id_from
from edgeserve.traffic.routing import new_client_id


def test_new_trace_ids_are_32_hex_digits_and_unique():
    ids = {trace_id_from({}) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_ids_are_made_without_asking_the_os_for_randomness(monkeypatch: pytest.MonkeyPatch):
    # os.urandom releases the GIL: under load the event loop then waits for it back.
    def refuse(_: int) -> bytes:
        raise AssertionError("os.urandom called for a per-request id")

    monkeypatch.setattr(os, "urandom", refuse)
    assert trace_id_from({}) != trace_id_from({})
    assert new_client_id() != new_client_id()


def test_two_processes_make_different_ids():
    code = "from edgeserve.ids import hex_id, urlsafe_id; print(hex_id(), urlsafe_id())"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert len(runs) == 2


def test_a_forked_child_does_not_repeat_its_parents_ids():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.write(write, f"{hex_id()} {urlsafe_id()}".encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 200).decode()
    os.waitpid(pid, 0)
    os.close(read)
    assert child != f"{hex_id()} {urlsafe_id()}"
