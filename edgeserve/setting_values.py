"""How each variable's text becomes a value: one parser per kind, each failing with one line
that names the variable, the value and what is allowed."""

from __future__ import annotations

import ipaddress
import re
import string
from collections.abc import Callable
from functools import partial
from pathlib import Path

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
MIN_ADMIN_TOKEN_CHARS = 16
# RFC 6265 cookie-name = token (RFC 7230 tchar): what a browser keeps and sends back.
COOKIE_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~")
MIN_FEEDBACK_SECRET_CHARS = 32
# Secrets the docs have shown (README, runbook, before they said `openssl rand -hex 32`), and
# the placeholder words they used: anyone who read the docs knows such a value.
DOCUMENTED_EXAMPLE_SECRETS = frozenset(
    {"change-me-to-a-long-secret", "change-me-to-16-chars-or-more"}
)
PLACEHOLDER_WORDS = ("change-me", "changeme", "change_me")
REDIS_URL = re.compile(
    r"^redis://(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9._-]+):(?P<port>\d{1,5})/\d{1,2}$"
)


class SettingsError(ValueError):
    """One variable has a value we cannot start with; the message names it."""


def _fail(name: str, raw: str, allowed: str) -> SettingsError:
    return SettingsError(f"{name}={raw!r} is not allowed: expected {allowed}")


# The parsers are module functions bound with partial, not closures, so that what they check
# is code a test (and `make mutate`) reaches at parse time rather than at import time.
def integer(minimum: int, maximum: int | None = None) -> Callable[[str, str], int]:
    return partial(_parse_integer, minimum=minimum, maximum=maximum)


def _parse_integer(name: str, raw: str, *, minimum: int, maximum: int | None) -> int:
    bounds = f">= {minimum}" if maximum is None else f"{minimum}..{maximum}"
    try:
        value = int(raw)
    except ValueError:
        raise _fail(name, raw, f"a whole number {bounds}") from None
    if value < minimum or (maximum is not None and value > maximum):
        raise _fail(name, raw, f"a whole number {bounds}")
    return value


def number(minimum: float) -> Callable[[str, str], float]:
    return partial(_parse_number, minimum=minimum)


def _parse_number(name: str, raw: str, *, minimum: float) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _fail(name, raw, f"a number >= {minimum:g}") from None
    if not value >= minimum or value == float("inf"):
        raise _fail(name, raw, f"a finite number >= {minimum:g}")
    return value


def boolean(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _fail(name, raw, "true or false (also 1/0, yes/no, on/off)")


def choice(*options: str) -> Callable[[str, str], str]:
    return partial(_parse_choice, options=options)


def _parse_choice(name: str, raw: str, *, options: tuple[str, ...]) -> str:
    word = raw.strip().lower()
    if word not in options:
        raise _fail(name, raw, "one of " + ", ".join(options))
    return word


def text(name: str, raw: str) -> str:
    return raw


def path(name: str, raw: str) -> Path:
    if not raw.strip():
        raise _fail(name, raw, "a file path")
    return Path(raw)


def optional_path(name: str, raw: str) -> Path | None:
    return Path(raw) if raw.strip() else None


def redis_url(name: str, raw: str) -> str:
    if not raw.strip():
        return ""
    match = REDIS_URL.match(raw.strip())
    if match is None or not 0 < int(match["port"]) <= 65535:
        shown = re.sub(r"//[^@/]*@", "//***@", raw)  # a URL may carry a password: never echo it
        raise SettingsError(
            f"{name}={shown!r} is not allowed: expected redis://host:port/db "
            "(for example redis://127.0.0.1:6379/0), or leave it empty for STATE_PATH"
        )
    return raw.strip()


def _refuse_examples(name: str, raw: str) -> None:
    lowered = raw.lower()
    if raw in DOCUMENTED_EXAMPLE_SECRETS or any(word in lowered for word in PLACEHOLDER_WORDS):
        raise SettingsError(
            f"{name} is an example value from the docs, which is not allowed: anyone who read "
            f'them knows it; set a random one, e.g. {name}="$(openssl rand -hex 32)"'
        )


def token(name: str, raw: str) -> str:
    # The token itself is never echoed: only its length or the position of a bad character.
    if not raw:
        return raw
    _refuse_examples(name, raw)
    invisible = next((i for i, char in enumerate(raw) if not "!" <= char <= "~"), None)
    if invisible is not None:
        raise SettingsError(
            f"{name} has a space, control or non-ASCII character at position {invisible + 1}, "
            "which is not allowed: expected visible ASCII characters only (it is sent in "
            "an Authorization header)"
        )
    if len(raw) < MIN_ADMIN_TOKEN_CHARS:
        raise SettingsError(
            f"{name} has {len(raw)} characters, which is not allowed: expected at least "
            f"{MIN_ADMIN_TOKEN_CHARS} characters, or leave it empty to turn it off"
        )
    return raw


def cookie_name(name: str, raw: str) -> str:
    if not raw or any(char not in COOKIE_TOKEN_CHARS for char in raw):
        raise _fail(name, raw, "an RFC 6265 cookie name: letters, digits and !#$%&'*+-.^_`|~")
    return raw


def networks(name: str, raw: str) -> tuple[str, ...]:
    items = tuple(item.strip() for item in raw.split(",") if item.strip())
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise _fail(
                name, raw, "comma-separated IP addresses or CIDRs, e.g. 10.0.0.0/8,127.0.0.1"
            ) from None
    return items


def feedback_secret(name: str, raw: str) -> str:
    if raw:
        _refuse_examples(name, raw)
    if raw and len(raw) < MIN_FEEDBACK_SECRET_CHARS:
        raise SettingsError(
            f"{name} has {len(raw)} characters, which is not allowed: expected at least "
            f"{MIN_FEEDBACK_SECRET_CHARS} random characters, or leave it empty to turn feedback off"
        )
    return raw


def public_key_files(name: str, raw: str) -> tuple[Path, ...]:
    """Comma-separated files, each an Ed25519 public key in PEM (as `models keygen` writes)."""
    from edgeserve.inference.signature import public_key  # cryptography only when set

    files = tuple(Path(item.strip()) for item in raw.split(",") if item.strip())
    for file in files:
        try:
            public_key(file.read_bytes())
        except (OSError, ValueError) as error:
            why = getattr(error, "strerror", None) or str(error).splitlines()[0]
            raise _fail(
                name,
                raw,
                f"comma-separated PEM files of Ed25519 public keys (edgeserve models keygen); "
                f"{file}: {why}",
            ) from None
    return files
