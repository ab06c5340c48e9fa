"""resize_backend opencv: each resize rule's sizes and offsets, against cv2 called directly."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from edgeserve.inference.metadata import ModelMeta
from edgeserve.inference.opencv_resize import fit

cv2 = pytest.importorskip("cv2", reason="the opencv extra is not installed")


def photo(width: int, height: int) -> Image.Image:
    rng = np.random.default_rng(width * height)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def meta(**values) -> ModelMeta:
    return ModelMeta(labels=("a", "b"), resize_backend="opencv", **values)


def test_stretch_is_cv2_resize_to_the_input_size():
    image = photo(90, 70)
    got = fit(image, meta(interpolation="bicubic"), 32, 48)
    want = cv2.resize(np.asarray(image), (48, 32), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(got, want)


def test_center_crop_rounds_the_longer_side_and_floors_the_crop_offset():
    # 300x201 to a shorter side of 256: 300 x 256/201 = 382.09 -> 382; crop 224 from (16, 79).
    image = photo(300, 201)
    got = fit(image, meta(resize="center_crop", resize_size=256, input_size=(224, 224)), 224, 224)
    resized = cv2.resize(np.asarray(image), (382, 256), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(got, resized[16 : 16 + 224, 79 : 79 + 224])


def test_letterbox_pastes_the_cv2_resize_on_the_pad_value():
    image = photo(100, 50)
    got = fit(image, meta(resize="letterbox", pad_value=(255, 255, 255)), 64, 64)
    inner = cv2.resize(np.asarray(image), (64, 32), interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(got[16:48], inner)
    assert (got[:16] == 255).all() and (got[48:] == 255).all()


def test_area_is_opencvs_inter_area():
    image = photo(97, 61)
    got = fit(image, meta(interpolation="area"), 20, 30)
    want = cv2.resize(np.asarray(image), (30, 20), interpolation=cv2.INTER_AREA)
    assert np.array_equal(got, want)
