"""The model registry: one session per model, however it moves between slots."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

import edgeserve.inference.model
import edgeserve.state.model_store
from edgeserve.inference.recent import RecentInputs
from edgeserve.inference.registry import ModelRegistry
from edgeserve.settings import Settings
from edgeserve.state.model_store import ModelStore
from edgeserve.state.schema import SlotModel

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def registry(tmp_path) -> ModelRegistry:
    for name in ("vA.onnx", "vB.onnx"):
        shutil.copy(REPO / "models" / name, tmp_path / name)
    settings = Settings(model_dir=tmp_path, warmup_runs=1)
    return ModelRegistry(settings, ModelStore(tmp_path / "kept"), RecentInputs())


def kept(registry: ModelRegistry, name: str) -> SlotModel:
    return registry.model_store.keep(registry.settings.model_dir / name)


def test_promoting_moves_b_s_session_to_a_instead_of_loading_a_second(registry):
    a, b = kept(registry, "vA.onnx"), kept(registry, "vB.onnx")

    async def promote() -> None:
        assert await registry.follow({"A": a, "B": b}) == []
        assert await registry.follow({"A": b, "B": b}) == []

    asyncio.run(promote())
    assert registry.get("A") is registry.get("B")
    assert registry.get("A").name == "vB"


def test_a_hot_load_hashes_the_model_s_bytes_once(registry, monkeypatch):
    hashed: list[Path] = []
    real = edgeserve.inference.model.file_sha256

    def counting(path: Path) -> str:
        hashed.append(Path(path))
        return real(path)

    monkeypatch.setattr(edgeserve.inference.model, "file_sha256", counting)
    monkeypatch.setattr(edgeserve.state.model_store, "file_sha256", counting)
    slot, model = asyncio.run(registry.load_file("vB.onnx"))
    assert model.sha256 == slot.version == real(registry.settings.model_dir / "vB.onnx")
    assert len(hashed) == 1, hashed
