"""Run one admin call on every instance of a fleet, then read back and compare what they serve."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from edgeserve.client import ClientError, EdgeserveClient
from edgeserve.variants import VARIANTS

Call = Callable[[EdgeserveClient], dict[str, Any]]
SETTLE_SECONDS = 2.0
SETTLE_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class Outcome:
    """What one instance answered to one call: data, or the error that stopped it."""

    url: str
    data: dict[str, Any] | None = None
    error: ClientError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        if self.error is not None:
            failure = {"message": self.error.message, "status": self.error.status}
            return {"url": self.url, "ok": False, "error": failure}
        return {"url": self.url, "ok": True, "result": self.data}


def call_one(url: str, token: str | None, call: Call) -> Outcome:
    try:
        with EdgeserveClient(url, token) as client:
            return Outcome(url, data=call(client))
    except ClientError as error:
        return Outcome(url, error=error)


def run_on_each(urls: list[str], token: str | None, call: Call) -> list[Outcome]:
    """The call on every instance at once (a down one costs one connect timeout); URL order."""
    if len(urls) == 1:
        return [call_one(urls[0], token, call)]
    with ThreadPoolExecutor(max_workers=min(8, len(urls))) as pool:
        return list(pool.map(lambda url: call_one(url, token, call), urls))


def read_back(urls: list[str], token: str | None) -> list[Outcome]:
    """Each instance's config after a change: generation and the models in its slots."""
    return settle(urls, token, run_on_each(urls, token, lambda client: client.config()))


def settle(urls: list[str], token: str | None, readback: list[Outcome]) -> list[Outcome]:
    """Read again while instances that share a store disagree, for SETTLE_SECONDS at most.

    Instances on one Redis follow each other's changes within a second, so a difference right
    after a change is not drift yet; instances with a state each never converge by waiting."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while drift(readback) and shares_a_store(readback) and time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_SECONDS)
        readback = run_on_each(urls, token, lambda client: client.config())
    return readback


def shares_a_store(readback: list[Outcome]) -> bool:
    """True when every instance that answered keeps its state in Redis."""
    stores = {(o.data or {}).get("state_store") for o in readback if o.ok}
    return stores == {"redis"}


def served(config: dict[str, Any]) -> dict[str, Any]:
    """The parts of a config that must match across a fleet."""
    models = config.get("models") or {}
    return {
        "generation": config.get("generation"),
        **{variant: _model_id(models.get(variant)) for variant in VARIANTS},
    }


def drift(readback: list[Outcome]) -> dict[str, dict[str, Any]]:
    """{field: {url: value}} for each field on which the reachable instances disagree."""
    views = {o.url: served(o.data) for o in readback if o.ok and o.data is not None}
    differing: dict[str, dict[str, Any]] = {}
    for field in ("generation", *VARIANTS):
        values = {url: view[field] for url, view in views.items()}
        if len(set(values.values())) > 1:
            differing[field] = values
    return differing


def describe_drift(differing: dict[str, dict[str, Any]]) -> str:
    """One line naming each field that differs and what each instance has."""
    parts = []
    for field, values in differing.items():
        what = "generation" if field == "generation" else f"model {field}"
        listed = ", ".join(f"{url}={value or 'none'}" for url, value in values.items())
        parts.append(f"{what} differs ({listed})")
    return "; ".join(parts)


def _model_id(model: dict[str, Any] | None) -> str | None:
    if not model:
        return None
    return f"{model.get('name')} {model.get('version')}"
