"""Preprocessing: base64, PNG/JPEG decoding under a pixel cap, mode conversion, tensors."""

from __future__ import annotations

import base64
import struct

import numpy as np
import pytest
from PIL import Image

from edgeserve.errors import BadRequest, ImageError
from edgeserve.inference.metadata import ModelMeta
from edgeserve.inference.preprocess import decode_base64, decode_image, draft_size, to_tensor

CAP = 40_000_000
RED, BLUE = (255, 0, 0), (0, 0, 255)


def pixel(image: Image.Image, xy=(0, 0)) -> tuple[int, ...]:
    return image.getpixel(xy)


def near(got, want, tol=6) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(got, want, strict=True))


# --- base64 ------------------------------------------------------------------------------


def test_plain_base64_decodes():
    assert decode_base64(base64.b64encode(b"\x89PNG data").decode()) == b"\x89PNG data"


def test_data_url_prefix_is_stripped():
    text = "data:image/png;base64," + base64.b64encode(b"abcdef").decode()
    assert decode_base64(text) == b"abcdef"


def test_whitespace_and_line_breaks_are_ignored():
    text = base64.encodebytes(b"x" * 200).decode()  # MIME style, a newline every 76 chars
    assert decode_base64(f"  {text}\r\n ") == b"x" * 200


@pytest.mark.parametrize("data", [b"abcd", b"abcde"], ids=["two '=' dropped", "one '=' dropped"])
def test_missing_padding_is_tolerated(data):
    assert decode_base64(base64.b64encode(data).decode().rstrip("=")) == data


def test_url_safe_alphabet_is_accepted():
    data = bytes([0xFB, 0xEF, 0xFF])
    assert decode_base64(base64.urlsafe_b64encode(data).decode()) == data


@pytest.mark.parametrize("text", ["not base64!!", "abc$def", "a"])
def test_bad_base64_is_a_400_invalid_base64(text):
    with pytest.raises(BadRequest) as err:
        decode_base64(text)
    assert (err.value.code, err.value.status_code) == ("invalid_base64", 400), err.value.message


@pytest.mark.parametrize("text", ["", "   \n", "data:image/png;base64,"])
def test_empty_image_field_is_a_400_empty_image(text):
    with pytest.raises(BadRequest) as err:
        decode_base64(text)
    assert err.value.code == "empty_image", err.value.message


# --- formats and damage ------------------------------------------------------------------


def image_error(data: bytes, max_pixels: int = CAP, **kwargs) -> ImageError:
    with pytest.raises(ImageError) as err:
        decode_image(data, max_pixels, **kwargs)
    return err.value


def test_bytes_that_are_no_image_are_not_an_image():
    err = image_error(b"hello, this is text and not a picture")
    assert (err.code, err.status_code) == ("not_an_image", 422), err.message


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "WEBP", "TIFF"])
def test_other_image_formats_are_unsupported(encode, fmt):
    err = image_error(encode(Image.new("RGB", (8, 8), RED), fmt))
    assert err.code == "unsupported_image_format" and fmt in err.message, err.message


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_a_truncated_image_is_truncated_image(encode, fmt):
    rng = np.random.default_rng(0)
    noisy = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = encode(noisy, fmt)
    err = image_error(data[: len(data) // 2])
    assert err.code == "truncated_image", err.message


def test_png_signature_with_a_broken_header_is_truncated_image():
    err = image_error(b"\x89PNG\r\n\x1a\n\x00\x00")
    assert err.code == "truncated_image", err.message


# --- pixel cap ---------------------------------------------------------------------------


def test_png_header_claiming_30000x30000_is_refused_before_decoding(raw_png):
    # The file has a header and no pixel data at all: had the decoder run, it would report a
    # truncated image, so image_too_large proves the cap was checked from the header alone.
    bomb = raw_png(30000, 30000, 8, 2, rows=None)
    assert len(bomb) < 100, len(bomb)
    err = image_error(bomb, max_pixels=CAP)
    assert (err.code, err.status_code) == ("image_too_large", 422), err.message
    assert "30000x30000" in err.message, err.message


def test_jpeg_header_claiming_30000x30000_is_refused_before_decoding(solid):
    data = bytearray(solid(RED, "JPEG", size=(16, 16)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 30000, 30000)  # height, width
    err = image_error(bytes(data))
    assert err.code == "image_too_large" and "30000x30000" in err.message, err.message


def test_pils_own_decompression_bomb_error_is_image_too_large(raw_png):
    # A cap above PIL's own limit lets PIL's DecompressionBombError fire; it must not be a 500,
    # and the limit it names is the one that fired: twice PIL's MAX_IMAGE_PIXELS.
    err = image_error(raw_png(30000, 30000, 8, 2, rows=None), max_pixels=10**12)
    assert err.code == "image_too_large", err.message
    assert f"has more than {2 * Image.MAX_IMAGE_PIXELS} pixels" in err.message, err.message


def test_the_cap_counts_width_times_height_of_a_wide_image(solid):
    err = image_error(solid(RED, size=(300, 20)), max_pixels=5_000)  # 6000 pixels, 20x20 < cap
    assert err.message == ("the image 300x20 has more than 5000 pixels: downscale it and retry"), (
        err.message
    )


def test_image_one_pixel_over_the_cap_is_refused(solid):
    err = image_error(solid(RED, size=(100, 100)), max_pixels=9_999)
    assert err.code == "image_too_large", err.message


def test_image_exactly_at_the_cap_is_decoded(solid):
    assert decode_image(solid(RED, size=(100, 100)), 10_000).size == (100, 100)


# --- modes -------------------------------------------------------------------------------


def test_rgb_png_decodes_to_rgb(solid):
    image = decode_image(solid((10, 200, 30)), CAP)
    assert (image.mode, pixel(image)) == ("RGB", (10, 200, 30))


def test_rgba_opaque_keeps_its_colour(encode):
    image = decode_image(encode(Image.new("RGBA", (8, 8), (255, 0, 0, 255))), CAP)
    assert (image.mode, pixel(image)) == ("RGB", RED)


def test_rgba_transparent_pixels_become_white(encode):
    image = decode_image(encode(Image.new("RGBA", (8, 8), (0, 0, 0, 0))), CAP)
    assert pixel(image) == (255, 255, 255), pixel(image)


def test_la_decodes_to_rgb_grey(encode):
    image = decode_image(encode(Image.new("LA", (8, 8), (100, 255))), CAP)
    assert (image.mode, pixel(image)) == ("RGB", (100, 100, 100))


def test_l_decodes_to_rgb_grey(encode):
    image = decode_image(encode(Image.new("L", (8, 8), 77)), CAP)
    assert (image.mode, pixel(image)) == ("RGB", (77, 77, 77))


def test_one_bit_decodes_to_black_and_white(encode):
    image = decode_image(encode(Image.new("1", (8, 8), 1)), CAP)
    assert pixel(image) == (255, 255, 255), pixel(image)


def test_palette_decodes_to_its_colour(encode):
    image = decode_image(encode(Image.new("RGB", (8, 8), BLUE).convert("P")), CAP)
    assert (image.mode, pixel(image)) == ("RGB", BLUE)


def test_palette_with_transparency_composites_over_white(encode):
    pal = Image.new("P", (8, 8), 0)
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.putpixel((1, 0), 1)
    image = decode_image(encode(pal, transparency=0), CAP)
    got = (pixel(image, (0, 0)), pixel(image, (1, 0)))
    assert got == ((255, 255, 255), RED), got


def test_cmyk_jpeg_decodes_to_rgb(encode):
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # full magenta+yellow ink = red
    image = decode_image(encode(cmyk, "JPEG", quality=95), CAP)
    assert image.mode == "RGB" and near(pixel(image), RED), pixel(image)


@pytest.mark.parametrize(("value", "want"), [(65535, 255), (32896, 128), (1000, 4), (0, 0)])
def test_sixteen_bit_grey_is_scaled_not_clipped(raw_png, value, want):
    data = raw_png(4, 2, 16, 0, rows=struct.pack(">H", value) * 8)
    image = decode_image(data, CAP)
    assert (image.mode, pixel(image)) == ("RGB", (want, want, want))


def test_sixteen_bit_rgb_png_decodes_to_eight_bit_rgb(raw_png):
    data = raw_png(2, 2, 16, 2, rows=struct.pack(">HHH", 65535, 32896, 0) * 4)
    image = decode_image(data, CAP)
    assert (image.mode, pixel(image)) == ("RGB", (255, 128, 0)), pixel(image)


def rotated_jpeg(encode) -> bytes:
    """Stored 64 wide x 32 high, left half red; orientation 6 means "rotate 90 clockwise to
    show", so the shown image is 32 x 64 with red on top."""
    stored = Image.new("RGB", (64, 32), BLUE)
    stored.paste(RED, (0, 0, 32, 32))
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(stored, "JPEG", quality=95, exif=exif.tobytes())


def test_exif_orientation_is_applied_when_the_model_asks(encode):
    plain = meta(mean=(0, 0, 0), std=(1, 1, 1), exif_transpose=True)
    tensor = to_tensor(decode_image(rotated_jpeg(encode), CAP), plain, (64, 32))
    top, bottom = tensor[0, :, 8, 16] * 255, tensor[0, :, 56, 16] * 255
    assert near(top, RED) and near(bottom, BLUE), (top, bottom)


def test_exif_orientation_is_ignored_by_default_as_reference_pipelines_do(encode):
    image = decode_image(rotated_jpeg(encode), CAP)
    tensor = to_tensor(image, meta(mean=(0, 0, 0), std=(1, 1, 1)), (32, 64))
    left, right = tensor[0, :, 16, 8] * 255, tensor[0, :, 16, 56] * 255
    assert image.size == (64, 32) and near(left, RED) and near(right, BLUE), (left, right)


def test_data_url_round_trip_decodes_the_image(solid):
    text = "data:image/jpeg;base64," + base64.b64encode(solid(RED, "JPEG")).decode()
    image = decode_image(decode_base64(text), CAP)
    assert near(pixel(image), RED), pixel(image)


def test_big_jpeg_is_decoded_at_reduced_scale_for_a_small_target(solid):
    data = solid(RED, "JPEG", size=(1024, 768))
    small = decode_image(data, CAP, draft_size=(64, 64))
    full = decode_image(data, CAP)
    assert full.size == (1024, 768) and small.size == (128, 96), (full.size, small.size)


def test_png_ignores_the_draft_size(solid):
    assert decode_image(solid(RED, size=(300, 200)), CAP, draft_size=(32, 32)).size == (300, 200)


# --- to_tensor ---------------------------------------------------------------------------


def meta(**kw) -> ModelMeta:
    return ModelMeta(labels=("a", "b", "c"), **kw)


def test_tensor_is_nchw_float32_batch_of_one_and_contiguous():
    tensor = to_tensor(Image.new("RGB", (50, 30), RED), meta(), 24)
    got = (tensor.shape, tensor.dtype, tensor.flags["C_CONTIGUOUS"])
    assert got == ((1, 3, 24, 24), np.float32, True), got


def test_tensor_applies_scale_mean_and_std_per_channel():
    tensor = to_tensor(Image.new("RGB", (4, 4), (255, 0, 51)), meta(), 4)
    want = (np.array([1.0, 0.0, 0.2]) - np.array([0.485, 0.456, 0.406])) / np.array(
        [0.229, 0.224, 0.225]
    )
    assert np.allclose(tensor[0, :, 2, 2], want, atol=1e-5), tensor[0, :, 2, 2]


def test_tensor_nhwc_layout_puts_channels_last():
    plain = meta(layout="NHWC", mean=(0, 0, 0), std=(1, 1, 1))
    tensor = to_tensor(Image.new("RGB", (4, 4), RED), plain, 8)
    assert tensor.shape == (1, 8, 8, 3) and tensor.flags["C_CONTIGUOUS"], tensor.shape
    assert np.allclose(tensor[0, 3, 3], [1.0, 0.0, 0.0]), tensor[0, 3, 3]


def test_tensor_bgr_order_reverses_channels():
    plain = meta(channel_order="BGR", mean=(0, 0, 0), std=(1, 1, 1))
    tensor = to_tensor(Image.new("RGB", (4, 4), RED), plain, 4)
    assert np.allclose(tensor[0, :, 0, 0], [0.0, 0.0, 1.0]), tensor[0, :, 0, 0]


def test_tensor_of_a_non_rgb_image_is_converted_first():
    tensor = to_tensor(Image.new("L", (4, 4), 255), meta(mean=(0, 0, 0), std=(1, 1, 1)), 4)
    assert np.allclose(tensor, 1.0), tensor.ravel()[:3]


def test_tensor_nhwc_layout_applies_mean_and_std_as_float32():
    halves = meta(layout="NHWC", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    tensor = to_tensor(Image.new("RGB", (4, 4), RED), halves, 4)
    assert tensor.dtype == np.float32, tensor.dtype
    assert np.allclose(tensor[0, 1, 1], [1.0, -1.0, -1.0]), tensor[0, 1, 1]


@pytest.mark.parametrize("name", ["nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"])
def test_each_interpolation_is_pillows_filter_of_that_name(name):
    image = Image.effect_noise((37, 23), 60).convert("RGB")
    plain = meta(mean=(0, 0, 0), std=(1, 1, 1), scale=1.0, interpolation=name)
    filters = {f.name.lower(): f for f in Image.Resampling}
    want = np.asarray(image.resize((16, 12), filters[name]), dtype=np.float32)
    got = to_tensor(image, plain, (12, 16))[0].transpose(1, 2, 0)
    assert np.array_equal(got, want), name


def test_letterbox_pads_with_the_pad_value_centred():
    plain = meta(mean=(0, 0, 0), std=(1, 1, 1), scale=1.0, resize="letterbox", pad_value=(9, 8, 7))
    tensor = to_tensor(Image.new("RGB", (40, 20), RED), plain, 40)[0]
    rows = tensor[:, :, 20].T.tolist()  # top to bottom through the middle column
    assert rows[:10] == [[9, 8, 7]] * 10 and rows[10:30] == [[255, 0, 0]] * 20, rows
    assert rows[30:] == [[9, 8, 7]] * 10, rows


def test_grayscale_model_gets_one_luma_channel():
    grey = meta(mean=(0,), std=(1,), scale=1.0, color="grayscale", pad_value=(0,))
    tensor = to_tensor(Image.new("RGB", (4, 4), (255, 0, 0)), grey, 4)
    assert tensor.shape == (1, 1, 4, 4) and np.all(tensor == 76), tensor.ravel()[:3]


def test_draft_decoding_asks_for_no_less_than_the_resize_needs():
    crop = meta(resize="center_crop", resize_size=256, input_size=(224, 224))
    assert draft_size(crop, (224, 224)) == (256, 256)
    assert draft_size(meta(), (32, 128)) == (128, 32), "(width, height) for a stretch"
