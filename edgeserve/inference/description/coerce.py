"""Turn one raw description value into a checked Python value.

A value comes from JSON (a sidecar) or is a string (metadata_props, which may hold JSON or a
Python literal). Every function returns the checked value or raises `fail(key, problem)`, so
the caller decides whose fault the message names. Pure: no I/O, no defaults beyond "absent".
"""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Callable
from typing import Any

from edgeserve.errors import ModelLoadError

Fail = Callable[[str, str], ModelLoadError]
"""Builds the error for `key` with a one-line `problem`, naming where the value came from."""


def decoded(value: Any) -> Any:
    """metadata_props values are strings; JSON-decode those that hold lists or objects."""
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("[", "{"):
            try:
                return json.loads(text)
            except ValueError:
                try:  # exporters such as ultralytics write Python literals: {0: 'person'}
                    return ast.literal_eval(text)
                except (ValueError, SyntaxError, MemoryError, RecursionError):
                    return value
    return value


def choice(
    raw: dict[str, Any], key: str, allowed: tuple[str, ...], fail: Fail, *, lower: bool = False
) -> str | None:
    """One of `allowed`, case-normalised (lower or upper); None when the key is absent."""
    if key not in raw:
        return None
    value = raw[key]
    if isinstance(value, str):
        norm = value.strip().lower() if lower else value.strip().upper()
        if norm in allowed:
            return norm
    raise fail(key, f"must be one of {list(allowed)}, got {value!r}")


def flag(raw: dict[str, Any], key: str, fail: Fail) -> bool:
    """A JSON boolean or the string "true"/"false"; False when the key is absent."""
    value = raw.get(key, False)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, bool):
        return value
    raise fail(key, f"must be true or false, got {value!r}")


def number(value: Any, key: str, fail: Fail) -> float:
    """A finite number, given as a number, a numeric string or a fraction such as "1/255"."""
    value = decoded(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            if "/" in text:  # "1/255" reads better than 0.00392156862745098
                num, den = text.split("/", 1)
                result = float(num) / float(den)
            else:
                result = float(text)
        except (ValueError, ZeroDivisionError):
            raise fail(key, f"must be a number, got {value!r}") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        result = float(value)
    else:
        raise fail(key, f"must be a number, got {value!r}")
    if not math.isfinite(result):
        raise fail(key, f"must be a finite number, got {value!r}")
    return result


def whole(value: Any, key: str, fail: Fail, low: int, high: int) -> int:
    """A whole number from `low` to `high` inclusive."""
    result = number(value, key, fail)
    if result != int(result) or not low <= result <= high:
        raise fail(key, f"must be a whole number from {low} to {high}, got {value!r}")
    return int(result)


def per_channel(value: Any, key: str, channels: int, fail: Fail) -> list[Any]:
    """One value for every channel, or exactly one per channel."""
    value = decoded(value)
    if not isinstance(value, list):
        value = [value]
    if len(value) == 1:
        value = value * channels
    if len(value) != channels:
        raise fail(key, f"must be one number or {channels} (one per channel), got {value!r}")
    return value


def numbers(raw: dict[str, Any], key: str, channels: int, fail: Fail) -> tuple[float, ...] | None:
    """One number per channel; None when the key is absent."""
    if key not in raw:
        return None
    return tuple(number(v, key, fail) for v in per_channel(raw[key], key, channels, fail))
