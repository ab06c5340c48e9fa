"""Environment -> one frozen, validated Settings object, read once at start-up."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})
MIN_ADMIN_TOKEN_CHARS = 16
MIN_FEEDBACK_SECRET_CHARS = 32
REDIS_URL = re.compile(
    r"^redis://(?:[^@/\s]+@)?(?P<host>[A-Za-z0-9._-]+):(?P<port>\d{1,5})/\d{1,2}$"
)


class SettingsError(ValueError):
    """One variable has a value we cannot start with; the message names it."""


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    """Listen address (the container sets 0.0.0.0)."""
    port: int = 8080
    """Listen port."""
    workers: int = 1
    """Sanic worker processes."""
    max_body_bytes: int = 8_388_608
    """Larger request bodies get 413 before the body is read."""
    max_image_pixels: int = 25_000_000
    """Images with more pixels are refused before decoding (decompression bombs)."""
    jpeg_draft: bool = False
    """Decode big JPEGs at 1/2, 1/4 or 1/8 scale: faster, but scores differ from a full decode."""
    rate_limit_rps: float = 100.0
    """Token refill per second per client address on /v1/infer and /admin/*; 0 disables."""
    rate_limit_burst: int = 200
    """Token bucket size per client address."""
    ab_weight_a: float = 1.0
    """Traffic weight of variant A (normalised with B's)."""
    ab_weight_b: float = 0.0
    """Traffic weight of variant B."""
    shadow_enabled: bool = False
    """Mirror A's traffic to B and compare the answers."""
    canary_enabled: bool = False
    """Honour X-Canary forcing and run the canary guard."""
    sticky_cookie: bool = True
    """Assign variants by a client id cookie."""
    sticky_cookie_name: str = "edgeserve_ab"
    """Name of the sticky assignment cookie."""
    admin_token: str = ""
    """Bearer token for /admin/*; empty disables the admin API."""
    model_va_path: Path = Path("models/vA.onnx")
    """Model served in slot A."""
    model_vb_path: Path | None = Path("models/vB.onnx")
    """Model served in slot B; empty means single-model mode."""
    model_dir: Path = Path("models")
    """The only folder hot model loads may read from."""
    state_path: Path | None = None
    """File where admin changes persist across restarts (one host)."""
    state_url: str = ""
    """Redis holding the state for a fleet, redis://host:port/db; wins over STATE_PATH."""
    log_level: str = "info"
    """debug, info, warning or error."""
    log_format: str = "json"
    """json, or console for humans."""
    shadow_max_inflight: int = 4
    """Shadow runs in flight per worker; beyond it shadow work is dropped and counted."""
    canary_window: int = 200
    """Recent requests per variant the canary guard looks at."""
    canary_min_samples: int = 20
    """Requests B must have served in the window before the guard judges it."""
    canary_max_error_rate: float = 0.05
    """B's error rate above which the guard sets B's weight to 0."""
    canary_max_latency_ratio: float = 2.0
    """B's p95 inference time over A's (same input size) above which the guard rolls B back."""
    canary_min_latency_delta_ms: float = 5.0
    """B's p95 must also exceed A's by this many ms (one GIL switch interval) to roll back."""
    canary_max_consecutive_failures: int = 5
    """B model failures in a row (A failing none) that roll B back at once."""
    feedback_secret: str = ""
    """HMAC key for feedback tokens, the same on every instance; empty turns feedback off."""
    feedback_token_ttl_seconds: int = 86400
    """How long a feedback token is accepted after its answer."""
    feedback_replay_memory: int = 100000
    """Feedback tokens each worker remembers so a token counts once (about 100 bytes each)."""
    max_inflight: int = 64
    """Inference requests in progress per worker; beyond it 503 overloaded."""
    intra_op_threads: int = 0
    """ONNX Runtime threads per session; 0 means 1 (parallelism comes from one caller per core)."""
    batch_max_size: int = 1
    """Dynamic micro-batching: largest batch; 1 turns batching off."""
    batch_max_wait_ms: float = 2.0
    """Dynamic micro-batching: longest wait for a batch to fill."""
    warmup_runs: int = 3
    """Inferences run on each model before it serves."""
    graceful_shutdown_seconds: float = 15.0
    """How long in-flight requests may take to finish on SIGTERM."""

    @property
    def admin_enabled(self) -> bool:
        return bool(self.admin_token)

    def inference_threads(self) -> int:
        """Threads per worker that decode and run models: the cores shared among workers."""
        return max(1, (os.cpu_count() or 1) // self.workers)

    def session_threads(self) -> int:
        # Measured in benchmarks/README.md: one ORT thread per caller beats fewer callers with
        # more ORT threads each, since decoding runs on the same threads.
        return self.intra_op_threads if self.intra_op_threads > 0 else 1


def env_name(field_name: str) -> str:
    return field_name.upper()


def _fail(name: str, raw: str, allowed: str) -> SettingsError:
    return SettingsError(f"{name}={raw!r} is not allowed: expected {allowed}")


def _integer(minimum: int, maximum: int | None = None) -> Callable[[str, str], int]:
    def parse(name: str, raw: str) -> int:
        bounds = f">= {minimum}" if maximum is None else f"{minimum}..{maximum}"
        try:
            value = int(raw)
        except ValueError:
            raise _fail(name, raw, f"a whole number {bounds}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise _fail(name, raw, f"a whole number {bounds}")
        return value

    return parse


def _number(minimum: float) -> Callable[[str, str], float]:
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise _fail(name, raw, f"a number >= {minimum:g}") from None
        if not value >= minimum or value == float("inf"):
            raise _fail(name, raw, f"a finite number >= {minimum:g}")
        return value

    return parse


def _boolean(name: str, raw: str) -> bool:
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise _fail(name, raw, "true or false (also 1/0, yes/no, on/off)")


def _choice(*options: str) -> Callable[[str, str], str]:
    def parse(name: str, raw: str) -> str:
        word = raw.strip().lower()
        if word not in options:
            raise _fail(name, raw, "one of " + ", ".join(options))
        return word

    return parse


def _text(name: str, raw: str) -> str:
    return raw


def _path(name: str, raw: str) -> Path:
    if not raw.strip():
        raise _fail(name, raw, "a file path")
    return Path(raw)


def _optional_path(name: str, raw: str) -> Path | None:
    return Path(raw) if raw.strip() else None


def _redis_url(name: str, raw: str) -> str:
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


def _admin_token(name: str, raw: str) -> str:
    if raw and len(raw) < MIN_ADMIN_TOKEN_CHARS:
        # The token itself is never echoed: only its length.
        raise SettingsError(
            f"{name} has {len(raw)} characters, which is not allowed: expected at least "
            f"{MIN_ADMIN_TOKEN_CHARS} characters, or leave it empty to disable the admin API"
        )
    return raw


def _feedback_secret(name: str, raw: str) -> str:
    if raw and len(raw) < MIN_FEEDBACK_SECRET_CHARS:
        raise SettingsError(
            f"{name} has {len(raw)} characters, which is not allowed: expected at least "
            f"{MIN_FEEDBACK_SECRET_CHARS} random characters, or leave it empty to turn feedback off"
        )
    return raw


PARSERS: dict[str, Callable[[str, str], Any]] = {
    "host": _text,
    "port": _integer(0, 65535),
    "workers": _integer(1, 64),
    "max_body_bytes": _integer(1),
    "max_image_pixels": _integer(1),
    "jpeg_draft": _boolean,
    "rate_limit_rps": _number(0),
    "rate_limit_burst": _integer(0),
    "ab_weight_a": _number(0),
    "ab_weight_b": _number(0),
    "shadow_enabled": _boolean,
    "canary_enabled": _boolean,
    "sticky_cookie": _boolean,
    "sticky_cookie_name": _text,
    "admin_token": _admin_token,
    "model_va_path": _path,
    "model_vb_path": _optional_path,
    "model_dir": _path,
    "state_path": _optional_path,
    "state_url": _redis_url,
    "log_level": _choice("debug", "info", "warning", "error"),
    "log_format": _choice("json", "console"),
    "shadow_max_inflight": _integer(0),
    "canary_window": _integer(10),
    "canary_min_samples": _integer(1),
    "canary_max_error_rate": _number(0),
    "canary_max_latency_ratio": _number(1),
    "canary_min_latency_delta_ms": _number(0),
    "canary_max_consecutive_failures": _integer(1),
    "feedback_secret": _feedback_secret,
    "feedback_token_ttl_seconds": _integer(1),
    "feedback_replay_memory": _integer(1),
    "max_inflight": _integer(1),
    "intra_op_threads": _integer(0),
    "batch_max_size": _integer(1, 256),
    "batch_max_wait_ms": _number(0),
    "warmup_runs": _integer(0),
    "graceful_shutdown_seconds": _number(0),
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every variable once; raise SettingsError naming the first bad one."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in fields(Settings):
        raw = env.get(env_name(field.name))
        if raw is None:
            continue
        values[field.name] = PARSERS[field.name](env_name(field.name), raw)
    if "model_dir" not in values:
        values["model_dir"] = values.get("model_va_path", Settings.model_va_path).parent
    settings = Settings(**values)
    _check_together(settings, env)
    return settings


def _check_together(settings: Settings, env: Mapping[str, str]) -> None:
    if settings.ab_weight_a == 0 and settings.ab_weight_b == 0:
        raise SettingsError(
            "AB_WEIGHT_A=0 and AB_WEIGHT_B=0 are not allowed together: "
            "at least one weight must be above 0"
        )
    for name, path in (
        ("MODEL_VA_PATH", settings.model_va_path),
        ("MODEL_VB_PATH", settings.model_vb_path),
    ):
        if path is not None and not path.is_file():
            raise SettingsError(
                f"{name}={str(path)!r} is not allowed: expected an existing ONNX model file "
                f"(run 'edgeserve models demo' to build the demo models)"
            )
    if settings.model_vb_path is None and settings.ab_weight_b > 0 and "AB_WEIGHT_B" in env:
        raise SettingsError(
            f"AB_WEIGHT_B={env['AB_WEIGHT_B']!r} is not allowed without a B model: "
            "set MODEL_VB_PATH or AB_WEIGHT_B=0"
        )
    if not settings.model_dir.is_dir():
        raise SettingsError(
            f"MODEL_DIR={str(settings.model_dir)!r} is not allowed: expected an existing folder"
        )


def env_example_lines() -> list[str]:
    """The lines of .env.example: each variable with its default and one-line meaning."""
    lines: list[str] = []
    defaults = Settings()
    docs = _field_docs()
    for field in fields(Settings):
        default = getattr(defaults, field.name)
        if isinstance(default, bool):
            shown = "true" if default else "false"
        elif default is None:
            shown = ""
        else:
            shown = str(default)
        lines.append(f"# {docs.get(field.name, '')}")
        lines.append(f"{env_name(field.name)}={shown}")
    return lines


def _field_docs() -> dict[str, str]:
    """Attribute docstrings of Settings, read from the source (one line each)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(Settings))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
        ):
            docs[node.target.id] = str(following.value.value).strip()
    return docs
