"""How a model's session runs: in this process, or in a process of its own (inference.isolated).

Either way a runner answers the model's raw output and how long the run took, or raises
RunStopped when the run showed the model unsafe (it hung, died, ran out of memory)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnxruntime as ort

from edgeserve.inference.deadline import Deadlines


@dataclass(frozen=True)
class RunTiming:
    seconds: float
    """The run itself: its CPU time when CPU-timed, else its wall time."""
    queued: float = 0.0
    """Waited for the model's process to be free (a candidate runs one input at a time): a
    queue, like the wait for an inference thread, not the model's cost."""


class RunStopped(Exception):
    """A run the model itself ended badly; the message completes "model NAME (VERSION) ..."."""

    def __init__(self, what: str, *, timed_out: bool = False):
        super().__init__(what)
        self.what = what
        self.timed_out = timed_out


class Runner(Protocol):
    batch_dynamic: bool
    isolated: bool

    def run(self, batch: np.ndarray, cpu_timed: bool) -> tuple[np.ndarray, RunTiming]:
        """Raw output and how long the run took (its CPU time with `cpu_timed`)."""
        ...

    def close(self) -> None: ...


class SessionRunner:
    """A session in this process; with `deadlines`, a run past its timeout is stopped."""

    isolated = False

    def __init__(self, session: ort.InferenceSession, deadlines: Deadlines | None = None):
        self.session = session
        self.deadlines = deadlines
        image = session.get_inputs()[0]
        self.input_name: str = image.name
        self.output_name: str = session.get_outputs()[0].name
        self.batch_dynamic = not isinstance(image.shape[0], int)

    def run(self, batch: np.ndarray, cpu_timed: bool) -> tuple[np.ndarray, RunTiming]:
        clock = time.thread_time if cpu_timed else time.perf_counter
        feed = {self.input_name: batch}
        if self.deadlines is None:
            started = clock()
            (scores,) = self.session.run([self.output_name], feed)
            return scores, RunTiming(clock() - started)
        with self.deadlines.run_options() as options:
            started = clock()
            try:
                (scores,) = self.session.run([self.output_name], feed, options)
            except Exception:
                if options.terminate:
                    raise RunStopped(
                        f"ran past INFERENCE_TIMEOUT_MS ({self.deadlines.timeout_seconds * 1000:g} "
                        "ms) and was stopped",
                        timed_out=True,
                    ) from None
                raise
            return scores, RunTiming(clock() - started)

    def close(self) -> None:
        """Nothing to stop: the session goes with the last reference to it."""
