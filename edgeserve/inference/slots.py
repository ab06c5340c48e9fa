"""The two variant slots. A request takes the slot's model once and keeps it, so a swap
(promote, hot load) never changes the model under a request in flight."""

from __future__ import annotations

from pathlib import Path

from edgeserve.inference.model import Model
from edgeserve.observability.logging import log

VARIANTS = ("A", "B")


class Slots:
    def __init__(self) -> None:
        self.models: dict[str, Model] = {}

    def get(self, variant: str) -> Model | None:
        return self.models.get(variant)

    def loaded(self, variant: str) -> bool:
        return variant in self.models

    def swap(self, variant: str, model: Model) -> Model | None:
        """Put `model` in the slot; answers the model it replaced."""
        previous = self.models.get(variant)
        self.models[variant] = model
        return previous

    def clear(self, variant: str) -> None:
        self.models.pop(variant, None)

    def describe(self) -> dict[str, dict[str, str]]:
        return {variant: model.describe() for variant, model in self.models.items()}


def load_warm(
    path: Path, *, threads: int, warmup_runs: int, expected_sha256: str | None = None
) -> Model:
    """Load and warm a model, logging what it assumed; run in a thread, never on the event loop."""
    model = Model.load(path, intra_op_threads=threads, expected_sha256=expected_sha256)
    model.warm(warmup_runs)
    for event, message in model.doubts():
        log.warning(event, model=model.name, version=model.version, message=message)
    return model
