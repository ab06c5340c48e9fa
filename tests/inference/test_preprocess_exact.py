"""Preprocessing arithmetic and header parsing, exactly: crop offsets, letterbox sizes, caps."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from edgeserve.errors import BadRequest, ImageError
from edgeserve.inference.metadata import ModelMeta
from edgeserve.inference.preprocess import (
    _fit,
    _header_size,
    _pil_limit,
    _too_large,
    decode_base64,
    decode_image,
    resize_shorter_side,
    to_rgb,
    to_tensor,
    upright,
)

NEAREST = Image.Resampling.NEAREST


def meta(**kw) -> ModelMeta:
    return ModelMeta(labels=("a", "b", "c"), interpolation="nearest", **kw)


def columns(width: int, height: int) -> Image.Image:
    """A grey image whose every pixel holds its own column index (so crops can be read)."""
    return Image.fromarray(np.tile(np.arange(width, dtype=np.uint8), (height, 1)))


def rows(width: int, height: int) -> Image.Image:
    return Image.fromarray(np.tile(np.arange(height, dtype=np.uint8)[:, None], (1, width)))


# --- resize_shorter_side: torchvision's Resize(side) ----------------------------------------


@pytest.mark.parametrize(
    ("size", "want"),
    [((250, 333), (224, 298)), ((333, 250), (298, 224)), ((300, 300), (224, 224))],
    ids=["portrait", "landscape", "square"],
)
def test_the_shorter_side_becomes_side_and_the_longer_is_truncated(size, want):
    # 224 * 333 / 250 = 298.37: truncated, not rounded.
    assert resize_shorter_side(Image.new("L", size), 224, NEAREST).size == want


def test_an_image_whose_shorter_side_is_already_side_is_returned_as_is():
    image = Image.new("L", (224, 400))
    assert resize_shorter_side(image, 224, NEAREST) is image


# --- center_crop ------------------------------------------------------------------------------


def test_center_crop_keeps_the_middle_columns_rounding_half_to_even():
    crop = meta(resize="center_crop", resize_size=10, input_size=(10, 7))
    # 10 wide to 7: (10 - 7) / 2 = 1.5 rounds to 2, so columns 2..8 are kept.
    got = _fit(columns(10, 10), crop, 10, 7)
    assert got.shape == (10, 7) and got[0].tolist() == [2, 3, 4, 5, 6, 7, 8], got[0]


def test_center_crop_keeps_the_middle_rows_rounding_half_to_even():
    crop = meta(resize="center_crop", resize_size=10, input_size=(5, 10))
    # 10 high to 5: (10 - 5) / 2 = 2.5 rounds to 2, so rows 2..6 are kept.
    got = _fit(rows(10, 10), crop, 5, 10)
    assert got.shape == (5, 10) and got[:, 0].tolist() == [2, 3, 4, 5, 6], got[:, 0]


def test_center_crop_resizes_the_shorter_side_first():
    crop = meta(resize="center_crop", resize_size=8, input_size=(8, 8))
    got = _fit(
        columns(16, 32), crop, 8, 8
    )  # to 8 x 16 (nearest takes pixel centres), then the middle 8 rows
    assert got.shape == (8, 8) and got[0].tolist() == list(range(1, 16, 2)), got[0]


# --- letterbox --------------------------------------------------------------------------------


def letterbox(pad=(9, 8, 7)) -> ModelMeta:
    return meta(resize="letterbox", pad_value=pad)


def test_letterbox_scales_by_the_tighter_ratio_and_centres_with_odd_padding_after():
    # 30x10 into 8x8: ratio min(8/30, 8/10) = 0.267 -> 8x3 (2.67 rounded), 2 rows above, 3 below.
    got = _fit(Image.new("RGB", (30, 10), (255, 0, 0)), letterbox(), 8, 8)
    painted = [bool((row == (255, 0, 0)).all()) for row in got]
    assert painted == [False, False, True, True, True, False, False, False], painted
    assert got[0, 0].tolist() == [9, 8, 7] and got[7, 7].tolist() == [9, 8, 7]


def test_letterbox_of_a_tall_image_pads_left_and_right():
    got = _fit(Image.new("RGB", (10, 30), (255, 0, 0)), letterbox(), 8, 8)
    painted = [bool((got[:, x] == (255, 0, 0)).all()) for x in range(8)]
    assert painted == [False, False, True, True, True, False, False, False], painted


def test_letterbox_never_scales_a_side_to_zero():
    wide = _fit(Image.new("RGB", (200, 1), (255, 0, 0)), letterbox(), 10, 10)
    tall = _fit(Image.new("RGB", (1, 200), (255, 0, 0)), letterbox(), 10, 10)
    assert [bool((row == (255, 0, 0)).all()) for row in wide].count(True) == 1
    assert [bool((column == (255, 0, 0)).all()) for column in tall.transpose(1, 0, 2)].count(
        True
    ) == 1
    assert wide.dtype == np.uint8


def test_letterbox_pads_a_grey_image_with_the_first_pad_value():
    got = _fit(Image.new("L", (20, 10), 200), letterbox(pad=(5, 6, 7)), 4, 4)
    assert got[:, 0].tolist() == [5, 200, 200, 5], got


def test_letterbox_of_an_image_already_at_size_keeps_its_pixels():
    image = Image.effect_noise((8, 8), 60)
    assert np.array_equal(_fit(image, letterbox(pad=(0,)), 8, 8), np.asarray(image))


# --- stretch ----------------------------------------------------------------------------------


def test_stretch_resizes_to_width_by_height():
    got = _fit(columns(8, 4), meta(), 2, 4)
    assert got.tolist() == [[1, 3, 5, 7], [1, 3, 5, 7]], got


# --- normalisation ----------------------------------------------------------------------------


def test_tensor_is_pixel_times_scale_minus_mean_over_std_per_channel():
    norm = meta(scale=0.5, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0))
    tensor = to_tensor(Image.new("RGB", (2, 2), (100, 200, 250)), norm, 2)
    want = [(100 * 0.5 - 10) / 2, (200 * 0.5 - 20) / 4, (250 * 0.5 - 30) / 5]
    assert tensor[0, :, 1, 1].tolist() == want, tensor[0, :, 1, 1]


def test_nhwc_tensor_is_normalised_per_channel_too():
    norm = meta(layout="NHWC", scale=0.5, mean=(10.0, 20.0, 30.0), std=(2.0, 4.0, 5.0))
    tensor = to_tensor(Image.new("RGB", (2, 2), (100, 200, 250)), norm, (2, 3))
    assert tensor.shape == (1, 2, 3, 3)
    assert tensor[0, 1, 2].tolist() == [20.0, 20.0, 19.0], tensor[0, 1, 2]


def test_grey_image_for_a_three_channel_model_is_repeated_per_channel():
    norm = meta(color="grayscale", scale=1.0, mean=(0.0, 1.0, 2.0), std=(1.0, 1.0, 1.0))
    tensor = to_tensor(Image.new("L", (2, 2), 7), norm, 2)
    assert tensor[0, :, 0, 0].tolist() == [7.0, 6.0, 5.0], tensor[0, :, 0, 0]


def test_a_non_square_size_is_height_then_width():
    assert to_tensor(Image.new("RGB", (9, 9)), meta(), (3, 5)).shape == (1, 3, 3, 5)


# --- header sizes, read without PIL -----------------------------------------------------------


def segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


SOF0 = segment(0xC0, b"\x08" + struct.pack(">HH", 300, 500) + b"\x03")  # height 300, width 500
SOI = b"\xff\xd8"


def test_png_header_size_is_width_then_height():
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 7, 9)
    assert _header_size(png, "PNG") == (7, 9)
    assert _header_size(png[:23], "PNG") is None
    assert _header_size(png.replace(b"IHDR", b"IHDX"), "PNG") is None


def test_jpeg_header_size_is_read_from_the_start_of_frame_past_other_segments():
    data = SOI + segment(0xE0, b"JFIF\x00" + b"\x00" * 9) + segment(0xC4, b"\x00" * 20) + SOF0
    assert _header_size(data, "JPEG") == (500, 300)


@pytest.mark.parametrize("restart", [b"\xff\xd0", b"\xff\xd7"], ids=["RST0", "RST7"])
def test_jpeg_fill_bytes_and_markers_without_a_length_are_stepped_over(restart):
    assert _header_size(SOI + b"\xff" + b"\xff\x01" + restart + SOF0, "JPEG") == (500, 300)


def test_an_empty_jpeg_segment_is_stepped_over():
    assert _header_size(SOI + segment(0xE0, b"") + SOF0, "JPEG") == (500, 300)


def test_a_jpeg_frame_header_cut_right_after_the_width_still_gives_the_size():
    assert _header_size(SOI + SOF0[:9], "JPEG") == (500, 300)


@pytest.mark.parametrize(
    "data",
    [
        SOI + b"\x00\x00" + SOF0,  # not a marker
        SOI + segment(0xDA, b"\x00" * 4) + SOF0,  # scan data before any size
        SOI + b"\xff\xd9\x00\x02" + SOF0,  # end of image
        SOI + b"\xff\xe0\x00\x01" + SOF0,  # a length below 2
        SOI + SOF0[:8],  # the frame header is cut off
    ],
    ids=["no-marker", "scan", "eoi", "short-length", "cut"],
)
def test_jpeg_without_a_readable_size_before_the_data_has_none(data):
    assert _header_size(data, "JPEG") is None


def test_sizes_above_the_signed_range_are_read_unsigned():
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", 2**31, 1)
    assert _header_size(png, "PNG") == (2**31, 1)
    sof = segment(0xC0, b"\x08" + struct.pack(">HH", 40000, 50000) + b"\x03")
    assert _header_size(SOI + sof, "JPEG") == (50000, 40000)


def test_a_jpeg_cut_inside_a_marker_has_no_size():
    assert _header_size(SOI + b"\xff", "JPEG") is None


def test_only_png_and_jpeg_headers_are_read():
    assert _header_size(SOI + SOF0, None) is None


# --- the pixel cap's messages -----------------------------------------------------------------


def test_too_large_names_the_size_and_the_cap():
    error = _too_large((300, 200), 1000)
    assert isinstance(error, ImageError) and error.code == "image_too_large"
    assert str(error) == "the image 300x200 has more than 1000 pixels: downscale it and retry"
    assert str(_too_large(None, 5)) == "the image has more than 5 pixels: downscale it and retry"


def test_pils_cap_is_twice_its_max_image_pixels_when_it_fired(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    assert (_pil_limit(5000), _pil_limit(1500)) == (2000, 1500)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert _pil_limit(5000) == 5000


# --- what a person reads: each refusal's code and whole message -------------------------------


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        (" \n", "empty_image", "image_b64 is empty: send the base64 of a PNG or JPEG file"),
        (
            "abcd$",  # four valid characters then one that is not: refused, not skipped
            "invalid_base64",
            "image_b64 is not valid base64: send the file's bytes base64-encoded (RFC 4648)",
        ),
    ],
    ids=["empty", "not-base64"],
)
def test_each_bad_image_field_has_its_code_and_message(text, code, message):
    with pytest.raises(BadRequest) as err:
        decode_base64(text)
    assert (err.value.code, err.value.message) == (code, message)


def decode_error(data: bytes) -> tuple[str, str]:
    with pytest.raises(ImageError) as err:
        decode_image(data, 40_000_000)
    return err.value.code, err.value.message


def test_each_undecodable_image_has_its_code_and_message(encode):
    png = encode(Image.effect_noise((64, 64), 60).convert("RGB"), "PNG")
    jpeg = encode(Image.effect_noise((64, 64), 60).convert("RGB"), "JPEG")
    assert decode_error(b"") == ("empty_image", "the image is empty: send a PNG or JPEG file")
    assert decode_error(b"plain text") == (
        "not_an_image",
        "the data is not an image: send the base64 of a PNG or JPEG file",
    )
    assert decode_error(encode(Image.new("RGB", (4, 4)), "GIF")) == (
        "unsupported_image_format",
        "image format GIF is not supported: convert it to PNG or JPEG",
    )
    assert decode_error(png[:20]) == (
        "truncated_image",
        "the PNG header is damaged: send a complete, valid PNG file",
    )
    assert decode_error(jpeg[: len(jpeg) // 2]) == (
        "truncated_image",
        "the JPEG data is truncated or corrupt: send the complete file",
    )


def test_pils_own_cap_names_the_size_from_the_header(raw_png):
    with pytest.raises(ImageError) as err:
        decode_image(raw_png(30000, 30000, 8, 2, rows=None), 10**12)
    assert err.value.message == (
        f"the image 30000x30000 has more than {2 * Image.MAX_IMAGE_PIXELS} pixels: "
        "downscale it and retry"
    )


def test_a_huge_image_of_another_format_is_unsupported_not_too_large(encode):
    bmp = bytearray(encode(Image.new("RGB", (4, 4)), "BMP"))
    bmp[18:26] = struct.pack("<ii", 30000, 30000)  # width, height in the info header
    assert decode_error(bytes(bmp)) == (
        "unsupported_image_format",
        "image format other than PNG/JPEG is not supported: convert it to PNG or JPEG",
    )


def test_a_png_whose_text_chunk_is_too_large_to_read_says_so():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "PNG")
    png = buffer.getvalue()
    data = b"comment\0\0" + zlib.compress(b"a" * 2_000_000)  # inflates past MAX_TEXT_CHUNK
    chunk = struct.pack(">I", len(data)) + b"zTXt" + data
    chunk += struct.pack(">I", zlib.crc32(b"zTXt" + data))
    assert decode_error(png[:33] + chunk + png[33:]) == (
        "image_metadata_too_large",
        "the PNG has a text (metadata) chunk larger than we read: strip its metadata "
        "(e.g. re-save it without text chunks) and retry",
    )


# --- colour modes and orientation -------------------------------------------------------------


def test_an_rgb_image_is_used_as_it_is():
    image = Image.new("RGB", (2, 2))
    assert to_rgb(image) is image


def test_a_palette_image_without_transparency_is_plain_rgb():
    image = Image.new("P", (2, 2), 1)
    image.putpalette([0, 0, 0, 10, 20, 30])
    got = to_rgb(image)
    assert (got.mode, got.getpixel((0, 0))) == ("RGB", (10, 20, 30))


@pytest.mark.parametrize(
    ("mode", "value", "want"),
    [
        ("I;16", 0, 0),
        ("I;16", 65535, 255),
        ("I;16", 32768, 128),
        ("I", -5, 0),
        ("I", 32768, 128),
        ("I", 70000, 255),
    ],
)
def test_sixteen_bit_and_integer_grey_are_scaled_to_eight_bits(mode, value, want):
    image = Image.new(mode, (2, 2), value)
    assert to_rgb(image).getpixel((1, 1)) == (want, want, want)


@pytest.mark.parametrize("mode", ["LA", "PA", "RGBa", "RGBA"])
def test_every_mode_with_alpha_is_composited_over_white(mode):
    clear = Image.new("RGBA", (2, 2), (0, 0, 0, 0))
    image = clear.convert(mode) if mode != "PA" else clear.convert("P").convert("PA")
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)


def oriented(orientation: int) -> Image.Image:
    """Stored 2 wide x 1 high: red then blue, with this EXIF orientation."""
    image = Image.new("RGB", (2, 1), (0, 0, 255))
    image.putpixel((0, 0), (255, 0, 0))
    image.getexif()[0x0112] = orientation
    return image


def test_an_image_without_a_turn_to_make_is_kept_as_it_is():
    for image in (oriented(1), Image.new("RGB", (2, 1))):
        assert upright(image) is image


@pytest.mark.parametrize(
    ("orientation", "size", "first"),
    [(2, (2, 1), (0, 0, 255)), (8, (1, 2), (0, 0, 255))],
    ids=["2-mirrored", "8-turned"],
)
def test_the_first_and_last_orientations_are_applied(orientation, size, first):
    turned = upright(oriented(orientation))
    assert (turned.size, turned.getpixel((0, 0))) == (size, first)
