"""A deadline for every in-process session run, enforced by onnxruntime itself.

A run is given `RunOptions`; one monitor thread sets `terminate` on the options of a run that
passed its deadline, and onnxruntime stops that run between two nodes with an error. Every run
has the same timeout, so runs fall due in the order they started: the monitor only ever looks
at the oldest one.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import onnxruntime as ort


class Deadlines:
    def __init__(self, timeout_seconds: float):
        self.timeout_seconds = timeout_seconds
        self.pending: OrderedDict[int, tuple[float, ort.RunOptions]] = OrderedDict()
        self.ids = itertools.count()
        self.wake = threading.Condition()
        self.monitor: threading.Thread | None = None

    @contextmanager
    def run_options(self) -> Iterator[ort.RunOptions]:
        """Options for one run; past the timeout onnxruntime is told to stop it."""
        options = ort.RunOptions()
        options.log_severity_level = 4  # the timeout is reported as our own one-line error
        run_id = next(self.ids)
        with self.wake:
            was_idle = not self.pending
            self.pending[run_id] = (time.monotonic() + self.timeout_seconds, options)
            if self.monitor is None:
                self.monitor = threading.Thread(
                    target=self._watch, name="run-deadlines", daemon=True
                )
                self.monitor.start()
            elif was_idle:
                self.wake.notify()
        try:
            yield options
        finally:
            with self.wake:
                self.pending.pop(run_id, None)

    def _watch(self) -> None:
        with self.wake:
            while True:
                if not self.pending:
                    self.wake.wait()
                    continue
                run_id, (due, options) = next(iter(self.pending.items()))
                left = due - time.monotonic()
                if left > 0:
                    self.wake.wait(left)
                    continue
                options.terminate = True
                self.pending.pop(run_id, None)
