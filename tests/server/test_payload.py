"""The request parser: the worker gets the image's bytes, and every bad field is a precise 4xx."""

from __future__ import annotations

import base64

import pytest

from edgeserve.errors import EdgeserveError
from edgeserve.server.payload import parse_infer


@pytest.mark.parametrize("value", [None, 42, ["abc"], {"b64": "abc"}, True])
def test_non_string_image_field_is_a_422_invalid_field(value):
    with pytest.raises(EdgeserveError) as err:
        parse_infer({"image_b64": value})
    assert (err.value.code, err.value.status_code) == ("invalid_field", 422), err.value.message


def test_an_image_field_that_is_not_a_string_says_what_it_got():
    with pytest.raises(EdgeserveError) as err:
        parse_infer({"image_b64": 42})
    assert err.value.message == "image_b64 must be a base64 string, got a JSON int"


def test_the_json_form_hands_on_the_file_s_bytes():
    data = b"\x89PNG the file"
    parsed = parse_infer({"image_b64": base64.b64encode(data).decode(), "top_k": 3})
    assert (parsed.image, parsed.top_k, parsed.img_size) == (data, 3, None)


def test_a_bad_top_k_is_reported_before_bad_base64():
    with pytest.raises(EdgeserveError) as err:
        parse_infer({"image_b64": "not base64 $", "top_k": 0})
    assert err.value.code == "invalid_field", err.value.message
