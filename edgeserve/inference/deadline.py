"""A deadline for every in-process session run, enforced by onnxruntime itself.

A run is given `RunOptions`; one monitor thread sets `terminate` on the options of a run that
passed its deadline, and onnxruntime stops that run between two nodes with an error. The
monitor ticks (a tenth of the timeout, at most TICK_SECONDS) instead of being woken by each
run: a run pays for a lock and a dict entry, never for a thread switch. Every run has the same
timeout, so runs fall due in the order they started: a tick looks only at the oldest ones.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import onnxruntime as ort

TICK_SECONDS = 0.1
"""How late past its deadline a run may be told to stop."""


class Deadlines:
    def __init__(self, timeout_seconds: float):
        self.timeout_seconds = timeout_seconds
        self.tick = min(TICK_SECONDS, timeout_seconds / 10)
        self.pending: OrderedDict[int, tuple[float, ort.RunOptions]] = OrderedDict()
        self.ids = itertools.count()
        self.lock = threading.Lock()
        self.monitor: threading.Thread | None = None

    @contextmanager
    def run_options(self) -> Iterator[ort.RunOptions]:
        """Options for one run; past the timeout onnxruntime is told to stop it."""
        options = ort.RunOptions()
        options.log_severity_level = 4  # the timeout is reported as our own one-line error
        run_id = next(self.ids)
        with self.lock:
            self.pending[run_id] = (time.monotonic() + self.timeout_seconds, options)
            if self.monitor is None:
                self.monitor = threading.Thread(
                    target=self._watch, name="run-deadlines", daemon=True
                )
                self.monitor.start()
        try:
            yield options
        finally:
            with self.lock:
                self.pending.pop(run_id, None)

    def _watch(self) -> None:
        while True:
            time.sleep(self.tick)
            now = time.monotonic()
            with self.lock:
                while self.pending:
                    run_id, (due, options) = next(iter(self.pending.items()))
                    if due > now:
                        break
                    options.terminate = True
                    del self.pending[run_id]
