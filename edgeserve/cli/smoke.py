"""edgeserve smoke: the checks CI runs against a freshly deployed server."""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import typer

from edgeserve.cli.options import AsJson, Token, Url
from edgeserve.cli.output import FAILURE, console, emit_json, fail
from edgeserve.cli.render import checks_table
from edgeserve.client import ClientError, EdgeserveClient
from edgeserve.variants import CURRENT, VARIANTS


@dataclass(frozen=True)
class Check:
    name: str
    result: str  # pass, fail or skip
    detail: str


class CheckFailed(Exception):
    """A check ran and the server's answer was wrong; the message says how."""


def red_png() -> bytes:
    """A tiny solid red image every demo model labels "red"."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (255, 0, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def check_health(client: EdgeserveClient) -> str:
    if client.health().get("ok") is not True:
        raise CheckFailed('/healthz did not answer {"ok": true}')
    return "/healthz ok"


def check_ready(client: EdgeserveClient) -> str:
    answer = client.ready()
    if answer.get("ready") is not True:
        raise CheckFailed(f"/ready says not ready: {answer}")
    return "/ready: models loaded"


def check_inference(client: EdgeserveClient) -> str:
    answer = client.infer(red_png(), top_k=3)
    predictions = answer.body.get("predictions") or []
    if answer.body.get("variant") not in VARIANTS or not predictions:
        raise CheckFailed(f"/v1/infer answered without a variant or predictions: {answer.body}")
    model = answer.body.get("model") or {}
    top = predictions[0]
    return (
        f"variant {answer.variant} ({model.get('name')} {model.get('version')}): "
        f"{top['label']} {top['score']:.3f}"
    )


def check_trace_id(client: EdgeserveClient) -> str:
    request_id = f"smoke-{uuid.uuid4().hex}"
    answer = client.infer(red_png(), top_k=1, request_id=request_id)
    if answer.trace_id != request_id:
        raise CheckFailed(f"sent X-Request-ID {request_id}, got Trace-Id {answer.trace_id}")
    if answer.body.get("trace_id") != request_id:
        raise CheckFailed(f"body trace_id {answer.body.get('trace_id')} is not {request_id}")
    return f"X-Request-ID echoed as Trace-Id ({request_id})"


def check_metrics(client: EdgeserveClient) -> str:
    from prometheus_client.parser import text_string_to_metric_families

    try:
        families = list(text_string_to_metric_families(client.metrics_text()))
    except ValueError as error:
        raise CheckFailed(f"/metrics is not Prometheus text: {error}") from None
    counted = sum(
        s.value
        for family in families
        for s in family.samples
        if s.name == "edgeserve_inferences_total"
    )
    if counted < 1:
        raise CheckFailed("/metrics has no edgeserve_inferences_total after an inference")
    return f"{len(families)} metric families, {counted:g} inferences counted"


def check_admin(client: EdgeserveClient) -> str:
    config = client.config()
    models = config.get("models") or {}
    if CURRENT not in models or "generation" not in config:
        raise CheckFailed(f"/admin/config lacks models.A or generation: {config}")
    return f"generation {config['generation']}, models {', '.join(sorted(models))}"


CHECKS: list[tuple[str, Callable[[EdgeserveClient], str]]] = [
    ("health", check_health),
    ("ready", check_ready),
    ("inference", check_inference),
    ("trace id", check_trace_id),
    ("metrics", check_metrics),
]


def wait_until_ready(client: EdgeserveClient, seconds: float) -> None:
    """Poll /ready until it says ready (a just-started server is loading models) or time is up."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if client.ready().get("ready") is True:
                return
            problem = "/ready still says not ready"
        except ClientError as error:
            problem = error.message
        if time.monotonic() >= deadline:
            fail(f"{client.url} not ready after waiting {seconds:g} s: {problem}")
        time.sleep(0.2)


def run_checks(client: EdgeserveClient, with_admin: bool) -> list[Check]:
    checks = [*CHECKS, ("admin config", check_admin)] if with_admin else CHECKS
    results = []
    for name, check in checks:
        try:
            results.append(Check(name, "pass", check(client)))
        except (CheckFailed, ClientError) as error:
            if isinstance(error, ClientError) and error.unreachable and not results:
                fail(error.message)  # nothing can pass; one line says why
            results.append(Check(name, "fail", str(getattr(error, "message", error))))
    if not with_admin:
        results.append(Check("admin config", "skip", "no --token (or ADMIN_TOKEN) given"))
    return results


def smoke_command(
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for each answer.")
    ] = 30.0,
    wait: Annotated[
        float,
        typer.Option(min=0, help="Seconds to wait for /ready first (a server just started)."),
    ] = 0.0,
) -> None:
    """Check health, readiness, an inference, trace ids, metrics (and admin with a token)."""
    import httpx

    url = url or ""
    limits = httpx.Timeout(connect=min(2.0, timeout), read=timeout, write=timeout, pool=2.0)
    with EdgeserveClient(url, token, timeout=limits) as client:
        if wait > 0:
            wait_until_ready(client, wait)
        results = run_checks(client, with_admin=bool(token))
    passed = all(check.result != "fail" for check in results)
    if as_json:
        emit_json({"url": url, "passed": passed, "checks": [check.__dict__ for check in results]})
    else:
        console.print(checks_table(url, results))
    if not passed:
        failed = [check.name for check in results if check.result == "fail"]
        fail(f"smoke test of {url} failed: {', '.join(failed)}", FAILURE)
