"""Request bytes to model input: base64, PNG/JPEG decoding under a pixel cap, tensor maths."""

from __future__ import annotations

import binascii
import io
import re
import struct

import numpy as np
import pybase64
from PIL import Image, ImageOps, UnidentifiedImageError

from edgeserve.errors import BadRequest, ImageError
from edgeserve.inference import opencv_resize
from edgeserve.inference.metadata import ModelMeta

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
SUPPORTED_FORMATS = ("PNG", "JPEG")
# JPEG start-of-frame markers carry the image size; C4 (DHT), C8 (JPG), CC (DAC) do not.
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_DATA_URL = re.compile(r"^data:[^,]*?;base64,", re.IGNORECASE)
_WHITESPACE = re.compile(r"\s+")
_URLSAFE = str.maketrans("-_", "+/")
# PIL raises these while reading damaged files; none of them means a server bug.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError, TypeError)
_ORIENTATION = 0x0112  # the EXIF tag
RESAMPLING = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
}


def decode_base64(text: str) -> bytes:
    """Decode the request's base64 image field; a `data:image/...;base64,` prefix is allowed."""
    body = _DATA_URL.sub("", text.strip(), count=1)
    try:  # plain standard base64, the common case: SIMD, no regex pass over the whole string
        data = pybase64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if data:
        return data
    body = _WHITESPACE.sub("", body).translate(_URLSAFE)  # url-safe alphabet accepted too
    if not body:
        raise BadRequest(
            "image_b64 is empty: send the base64 of a PNG or JPEG file", code="empty_image"
        )
    try:  # valid base64 that is not empty always holds at least one byte
        return pybase64.b64decode(_padded(body), validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(
            "image_b64 is not valid base64: send the file's bytes base64-encoded (RFC 4648)",
            code="invalid_base64",
        ) from None


def _padded(body: str) -> str:
    """Accept base64 with its '=' padding dropped, as many clients send it."""
    missing = -len(body) % 4
    return body + "=" * missing if missing in (1, 2) else body


def decode_image(
    data: bytes, max_pixels: int, draft_size: tuple[int, int] | None = None
) -> Image.Image:
    """Decode PNG or JPEG bytes to RGB, refusing oversized ones before decoding.

    `draft_size` (width, height) lets libjpeg decode a big JPEG at 1/2, 1/4 or 1/8 scale when
    that still covers it: faster, but the pixels differ from a full decode (JPEG_DRAFT).
    """
    if not data:
        raise ImageError("the image is empty: send a PNG or JPEG file", code="empty_image")
    kind = image_kind(data)
    if kind is None:
        _refuse_other(data)
    header_size = _header_size(data, kind)
    if header_size is not None:
        _check_pixels(header_size, max_pixels)

    try:
        img = Image.open(io.BytesIO(data), formats=SUPPORTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(header_size, _pil_limit(max_pixels)) from None
    except (UnidentifiedImageError, *_DECODE_ERRORS) as error:
        raise _damaged(
            error, f"the {kind} header is damaged: send a complete, valid {kind} file"
        ) from None
    _check_pixels(img.size, max_pixels)

    if draft_size and kind == "JPEG":  # img.format may also say MPO, a JPEG with extras
        img.draft("RGB", draft_size)
    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(img.size, _pil_limit(max_pixels)) from None
    except _DECODE_ERRORS as error:
        raise _damaged(
            error, f"the {kind} data is truncated or corrupt: send the complete file"
        ) from None
    return to_rgb(img)


def upright(image: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; unreadable EXIF leaves it as stored."""
    try:
        orientation = image.getexif().get(_ORIENTATION, 1)
        if orientation in range(2, 9):
            return ImageOps.exif_transpose(image)
    except (*_DECODE_ERRORS, KeyError, AttributeError):
        pass  # unreadable EXIF only loses the orientation hint; the pixels are fine
    return image


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to RGB; transparency is composited over white, 16-bit grey scaled to 8 bits."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode == "P":
        mode = "RGBA" if "transparency" in img.info else "RGB"
        img = img.convert(mode)
        if mode == "RGB":
            return img
    if mode.startswith("I;16") or mode == "I":
        grey = np.asarray(img).astype(np.float32, copy=False)
        grey = np.rint(np.clip(grey, 0, 65535) * (255.0 / 65535.0)).astype(np.uint8)
        return _with_info(Image.fromarray(grey).convert("RGB"), img)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return _with_info(Image.alpha_composite(background, rgba).convert("RGB"), img)
    return img.convert("RGB")


def _with_info(converted: Image.Image, original: Image.Image) -> Image.Image:
    """Keep the file's metadata (EXIF orientation) on an image rebuilt from its pixels."""
    converted.info.update(original.info)
    return converted


def draft_size(meta: ModelMeta, size: tuple[int, int]) -> tuple[int, int]:
    """The smallest (width, height) the model's resize needs from the decoder."""
    height, width = size
    if meta.resize == "center_crop":
        side = meta.crop_resize(size)
        return (side, side)
    return (width, height)


def to_tensor(image: Image.Image, meta: ModelMeta, size: int | tuple[int, int]) -> np.ndarray:
    """Orient, colour-convert, resize, normalise and lay out one image as a batch of one.

    `size` is the model input's (height, width), or one number for a square input.
    """
    height, width = (size, size) if isinstance(size, int) else size
    if meta.exif_transpose:
        image = upright(image)
    if meta.color == "grayscale":
        image = image if image.mode == "L" else to_rgb(image).convert("L")
    elif image.mode != "RGB":
        image = to_rgb(image)
    pixels = _fit(image, meta, height, width)
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    if pixels.shape[2] != meta.channels:  # a grayscale image for a 3-channel model
        pixels = np.repeat(pixels, meta.channels, axis=2)
    if meta.channel_order == "BGR":
        pixels = pixels[..., ::-1]
    gain, offset = gain_and_offset(meta)
    channels = meta.channels
    if meta.layout == "NCHW":
        out = np.empty((1, channels, height, width), dtype=np.float32)
        pixels = pixels.transpose(2, 0, 1)
    else:
        out = np.empty((1, height, width, channels), dtype=np.float32)
    np.multiply(pixels, gain, out=out[0])
    out[0] -= offset
    return out


def gain_and_offset(meta: ModelMeta) -> tuple[np.ndarray, np.ndarray]:
    """scale / std and mean / std per channel, shaped to broadcast over the model's layout:
    (pixel * scale - mean) / std is pixel * gain - offset."""
    std = np.asarray(meta.std, dtype=np.float32)
    gain = np.asarray(meta.scale, dtype=np.float32) / std
    offset = np.asarray(meta.mean, dtype=np.float32) / std
    if meta.layout == "NCHW":
        return gain[:, None, None], offset[:, None, None]
    return gain, offset


def _fit(image: Image.Image, meta: ModelMeta, height: int, width: int) -> np.ndarray:
    """The image's pixels at exactly height x width, by the model's resize rule."""
    if meta.resize_backend == "opencv":
        return opencv_resize.fit(image, meta, height, width)
    resample = RESAMPLING[meta.interpolation]
    if meta.resize == "center_crop":
        image = resize_shorter_side(image, meta.crop_resize((height, width)), resample)
        resized_w, resized_h = image.size
        # torchvision's CenterCrop: round half to even, as Python's round() does
        top = round((resized_h - height) / 2.0)
        left = round((resized_w - width) / 2.0)
        return np.asarray(image)[top : top + height, left : left + width]
    if meta.resize == "letterbox":
        src_w, src_h = image.size
        ratio = min(width / src_w, height / src_h)
        new_w, new_h = max(1, round(src_w * ratio)), max(1, round(src_h * ratio))
        if (new_w, new_h) != image.size:
            image = image.resize((new_w, new_h), resample)
        pixels = np.asarray(image)
        canvas = np.empty((height, width, *pixels.shape[2:]), dtype=np.uint8)
        canvas[...] = meta.pad_value if pixels.ndim == 3 else meta.pad_value[0]
        top, left = (height - new_h) // 2, (width - new_w) // 2  # odd padding: one more after
        canvas[top : top + new_h, left : left + new_w] = pixels
        return canvas
    if image.size != (width, height):
        image = image.resize((width, height), resample)
    return np.asarray(image)


def resize_shorter_side(image: Image.Image, side: int, resample: int) -> Image.Image:
    """torchvision's Resize(side) on PIL images: shorter side to `side`, longer truncated."""
    src_w, src_h = image.size
    short, long = (src_w, src_h) if src_w <= src_h else (src_h, src_w)
    if short == side:
        return image
    new_long = int(side * long / short)
    new_size = (side, new_long) if src_w <= src_h else (new_long, side)
    return image.resize(new_size, resample)


def image_kind(data: bytes) -> str | None:
    """PNG or JPEG, by the file's first bytes; None for anything else."""
    if data.startswith(PNG_SIGNATURE):
        return "PNG"
    if data.startswith(JPEG_SIGNATURE):
        return "JPEG"
    return None


def _refuse_other(data: bytes) -> None:
    """Name the format of bytes that are an image but not PNG/JPEG; else say it is no image."""
    try:
        with Image.open(io.BytesIO(data)) as other:  # reads the header only
            fmt = other.format or "unknown"
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        fmt = "other than PNG/JPEG"  # PIL knew the format and refused its size
    except Exception:  # any plugin failure means we cannot tell what it is
        fmt = None
    if fmt:
        raise ImageError(
            f"image format {fmt} is not supported: convert it to PNG or JPEG",
            code="unsupported_image_format",
        )
    raise ImageError(
        "the data is not an image: send the base64 of a PNG or JPEG file", code="not_an_image"
    )


def _header_size(data: bytes, kind: str | None) -> tuple[int, int] | None:
    """Width and height straight from the PNG IHDR or JPEG SOF header, without PIL."""
    if kind == "PNG":
        if len(data) >= 24 and data[12:16] == b"IHDR":
            return struct.unpack(">II", data[16:24])
        return None
    if kind == "JPEG":
        pos, end = 2, len(data)
        while pos + 4 <= end:
            if data[pos] != 0xFF:
                return None
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in (0x01, *range(0xD0, 0xD8)):  # markers without a length
                pos += 2
                continue
            (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
            if marker in _JPEG_SOF and pos + 9 <= end:
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return width, height
            if marker in (0xD9, 0xDA) or length < 2:  # end of image / scan data: no SOF seen
                return None
            pos += 2 + length
    return None


def _damaged(error: Exception, message: str) -> ImageError:
    # PIL caps text chunks (PngImagePlugin.MAX_TEXT_CHUNK / MAX_TEXT_MEMORY) with a ValueError
    # that names the cap: the file is whole, its metadata is just too large for us to read.
    if isinstance(error, ValueError) and "MAX_TEXT" in str(error):
        return ImageError(
            "the PNG has a text (metadata) chunk larger than we read: strip its metadata "
            "(e.g. re-save it without text chunks) and retry",
            code="image_metadata_too_large",
        )
    return ImageError(message, code="truncated_image")


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    if size[0] * size[1] > max_pixels:
        raise _too_large(size, max_pixels)


def _pil_limit(max_pixels: int) -> int:
    """The cap that actually applied when PIL's own decompression-bomb check fired."""
    pil_max = Image.MAX_IMAGE_PIXELS
    return min(max_pixels, 2 * pil_max) if pil_max else max_pixels


def _too_large(size: tuple[int, int] | None, max_pixels: int) -> ImageError:
    dims = f"{size[0]}x{size[1]} " if size else ""
    return ImageError(
        f"the image {dims}has more than {max_pixels} pixels: downscale it and retry",
        code="image_too_large",
    )
