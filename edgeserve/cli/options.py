"""Options shared by the commands that talk to a server: --url, --token, --json."""

from __future__ import annotations

from typing import Annotated

import typer

from edgeserve.client import DEFAULT_URL


def normalise_url(value: str) -> str:
    """http(s)://host[:port][/prefix] without a trailing slash; BadParameter (exit 2) otherwise."""
    import httpx  # here: the server's process loads this module too, and never needs it

    text = value.strip()
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, TypeError):
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host:
        raise typer.BadParameter(
            f"{value!r} is not a server URL: give one like {DEFAULT_URL}", param_hint="'--url'"
        )
    if url.query or url.fragment:
        raise typer.BadParameter(
            f"{value!r} has a query or fragment: give the server's base URL like {DEFAULT_URL}",
            param_hint="'--url'",
        )
    return text.rstrip("/")


def _check_urls(values: list[str] | None) -> list[str]:
    urls = [normalise_url(v) for v in values or [DEFAULT_URL]]
    duplicates = sorted({u for u in urls if urls.count(u) > 1})
    if duplicates:
        raise typer.BadParameter(
            f"{duplicates[0]} is given more than once: name each instance once",
            param_hint="'--url'",
        )
    return urls


def _check_url(value: str | None) -> str:
    return normalise_url(value or DEFAULT_URL)


Urls = Annotated[
    list[str] | None,
    typer.Option(
        "--url",
        envvar="EDGESERVE_URL",
        callback=_check_urls,
        show_default=DEFAULT_URL,
        help="Server base URL; repeat for a fleet (env: space-separated).",
    ),
]
Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="EDGESERVE_URL",
        callback=_check_url,
        show_default=DEFAULT_URL,
        help="Server base URL.",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="ADMIN_TOKEN",
        show_default=False,
        help="Admin bearer token (never printed).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]
