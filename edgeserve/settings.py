"""Environment -> one frozen, validated Settings object, read once at start-up."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from edgeserve import setting_values as parse
from edgeserve.setting_values import SettingsError


def setting(default: Any, parser: Callable[[str, str], Any]) -> Any:
    """A Settings field: its default and the parser of its variable; its docstring follows it."""
    return dataclasses.field(default=default, metadata={"parse": parser})


# Each variable is declared once, below: name, default, parser, then its one-line meaning.
# The Path fields carry `noqa: RUF009`: ruff cannot see setting() is a field; a Path is immutable.
@dataclass(frozen=True)
class Settings:
    host: str = setting("127.0.0.1", parse.text)
    """Listen address (the container sets 0.0.0.0)."""
    port: int = setting(8080, parse.integer(0, 65535))
    """Listen port."""
    workers: int = setting(1, parse.integer(1, 64))
    """Sanic worker processes."""
    max_body_bytes: int = setting(8_388_608, parse.integer(1))
    """Larger request bodies get 413 before the body is read."""
    model_max_bytes: int = setting(536_870_912, parse.integer(1))
    """Largest model POST /admin/uploads takes (413 beyond it, refused before it is all read)."""
    model_trusted_keys: tuple[Path, ...] = setting((), parse.public_key_files)
    """Comma-separated Ed25519 public key PEM files; set: a model loads only if one signed it."""
    model_upload_grace_seconds: float = setting(3600.0, parse.number(0))
    """A kept model no slot names stays this long after its push or keep, then is removed."""
    max_header_bytes: int = setting(8192, parse.integer(1024, 16384))
    """A longer request line gets 414, larger headers 431 (Sanic's ceiling is 16384)."""
    header_timeout_seconds: float = setting(10.0, parse.number(0.1))
    """Whole deadline for a request's line and headers; trickled bytes do not extend it (408)."""
    body_timeout_seconds: float = setting(30.0, parse.number(0.1))
    """Whole deadline for a request's body once its headers are in (408)."""
    keep_alive_timeout_seconds: float = setting(15.0, parse.number(0.1))
    """An idle keep-alive connection is closed after this long."""
    max_connections: int = setting(512, parse.integer(2))
    """Open connections per worker; at the cap an idle one is closed, else the new one refused."""
    trusted_proxies: tuple[str, ...] = setting((), parse.networks)
    """Comma-separated proxy IPs/CIDRs whose X-Forwarded-For / Forwarded name the client."""
    max_image_pixels: int = setting(25_000_000, parse.integer(1))
    """Images with more pixels are refused before decoding (decompression bombs)."""
    jpeg_draft: bool = setting(False, parse.boolean)
    """Decode big JPEGs at 1/2, 1/4 or 1/8 scale: faster, but scores differ from a full decode."""
    rate_limit_rps: float = setting(100.0, parse.number(0))
    """Token refill per second per client address on /v1/*, /v2/models/*, /admin/*; 0: off."""
    rate_limit_burst: int = setting(200, parse.integer(0))
    """Token bucket size per client address."""
    ab_weight_a: float = setting(1.0, parse.number(0))
    """Traffic weight of variant A (normalised with B's)."""
    ab_weight_b: float = setting(0.0, parse.number(0))
    """Traffic weight of variant B."""
    shadow_enabled: bool = setting(False, parse.boolean)
    """Mirror A's traffic to B and compare the answers."""
    canary_enabled: bool = setting(False, parse.boolean)
    """Honour X-Canary forcing and run the canary guard."""
    sticky_cookie: bool = setting(True, parse.boolean)
    """Assign variants by a client id cookie."""
    sticky_cookie_name: str = setting("edgeserve_ab", parse.cookie_name)
    """Name of the sticky assignment cookie (an RFC 6265 token)."""
    sticky_cookie_secure: bool = setting(False, parse.boolean)
    """Mark the sticky cookie Secure (HTTPS only); required by a __Host- name."""
    admin_token: str = setting("", parse.token)
    """Bearer token for /admin/*; empty disables the admin API."""
    metrics_token: str = setting("", parse.token)
    """Bearer token GET /metrics requires; empty leaves /metrics open."""
    admin_lockout_failures: int = setting(10, parse.integer(1))
    """Wrong admin tokens in a row from one client address before it must wait (429, per worker)."""
    admin_lockout_seconds: float = setting(1.0, parse.number(0.1))
    """First wait after ADMIN_LOCKOUT_FAILURES; each further wrong token doubles it, up to 900 s."""
    model_va_path: Path = setting(Path("models/vA.onnx"), parse.path)  # noqa: RUF009
    """Model served in slot A."""
    model_vb_path: Path | None = setting(Path("models/vB.onnx"), parse.optional_path)  # noqa: RUF009
    """Model served in slot B; empty, or unset while MODEL_VA_PATH is set, means no B."""
    model_dir: Path | None = setting(None, parse.optional_path)  # noqa: RUF009
    """The only folder hot model loads may read from; empty means the folder of MODEL_VA_PATH."""
    state_path: Path | None = setting(None, parse.optional_path)  # noqa: RUF009
    """File where admin changes persist across restarts (one host)."""
    state_url: str = setting("", parse.redis_url)
    """Redis holding the state for a fleet, redis://host:port/db; wins over STATE_PATH."""
    log_level: str = setting("info", parse.choice("debug", "info", "warning", "error"))
    """debug, info, warning or error."""
    log_format: str = setting("json", parse.choice("json", "console"))
    """json, or console for humans."""
    prometheus_multiproc_dir: Path | None = setting(None, parse.optional_path)  # noqa: RUF009
    """prometheus-client's multiprocess folder, wiped at start; empty: a temp one if WORKERS > 1."""
    shadow_max_inflight: int = setting(4, parse.integer(0))
    """Shadow runs in flight per worker; beyond it shadow work is dropped and counted."""
    capture_disagreements: int = setting(0, parse.integer(0, 10000))
    """Keep the last N inputs A and B disagree on (users' images) on disk; 0: off."""
    capture_disagreements_max_bytes: int = setting(104_857_600, parse.integer(1))
    """Disk bytes the captured disagreements may take; the oldest go first."""
    capture_disagreements_dir: Path | None = setting(None, parse.optional_path)  # noqa: RUF009
    """Folder of the captured disagreements; empty: `disagreements` beside the state file."""
    canary_window: int = setting(200, parse.integer(10))
    """Recent runs per arm and size behind the guard's p95s, and A's for the fast path."""
    canary_min_samples: int = setting(20, parse.integer(1))
    """Requests each arm must have served (answered runs, for latency) before the guard judges."""
    canary_max_error_rate: float = setting(0.05, parse.number(0))
    """B's error rate which, once significantly exceeded (and above A's), rolls B back."""
    canary_max_latency_ratio: float = setting(2.0, parse.number(1))
    """B's p95 inference time over A's (same input size) above which the guard rolls B back."""
    canary_min_latency_delta_ms: float = setting(5.0, parse.number(0))
    """B's p95 must also exceed A's by this many ms (one GIL switch interval) to roll back."""
    canary_max_consecutive_failures: int = setting(5, parse.integer(1))
    """B model failures in a row (A failing none) that roll B back at once."""
    feedback_secret: str = setting("", parse.feedback_secret)
    """HMAC key for feedback tokens, the same on every instance; empty turns feedback off."""
    feedback_token_ttl_seconds: int = setting(86400, parse.integer(1))
    """How long a feedback token is accepted after its answer."""
    feedback_replay_memory: int = setting(100000, parse.integer(1))
    """Feedback tokens each worker remembers so a token counts once (about 100 bytes each)."""
    max_inflight: int = setting(64, parse.integer(1))
    """Inference requests in progress per worker; beyond it 503 overloaded."""
    intra_op_threads: int = setting(0, parse.integer(0))
    """ONNX Runtime threads per session; 0 means 1 (parallelism comes from one caller per core)."""
    batch_max_size: int = setting(1, parse.integer(1, 256))
    """Dynamic micro-batching: largest batch; 1 turns batching off."""
    batch_max_wait_ms: float = setting(2.0, parse.number(0))
    """Dynamic micro-batching: longest wait for a batch to fill."""
    warmup_runs: int = setting(3, parse.integer(0))
    """Inferences run on each model before it serves."""
    tls_cert_file: Path | None = setting(None, parse.optional_path)  # noqa: RUF009
    """PEM certificate (chain) for HTTPS; with TLS_KEY_FILE the server speaks only HTTPS."""
    tls_key_file: Path | None = setting(None, parse.optional_path)  # noqa: RUF009
    """PEM private key of TLS_CERT_FILE."""
    tls_client_ca_file: Path | None = setting(None, parse.optional_path)  # noqa: RUF009
    """PEM CA certificate: /admin/* then also needs a client certificate it signed (mutual TLS)."""
    inference_timeout_ms: int = setting(10000, parse.integer(1))
    """Longest a model may take on one input; past it the run is stopped and is a model failure."""
    model_memory_limit_mb: int = setting(2048, parse.integer(0))
    """Address space of the process a candidate (B) runs and is admitted in; 0: no cap."""
    graceful_shutdown_seconds: float = setting(15.0, parse.number(0))
    """How long in-flight requests may take to finish on SIGTERM."""

    def __post_init__(self) -> None:
        if self.model_dir is None:  # frozen: set once, here, so every reader sees a folder
            object.__setattr__(self, "model_dir", self.model_va_path.parent)

    @property
    def admin_enabled(self) -> bool:
        return bool(self.admin_token)

    def inference_threads(self) -> int:
        """Threads per worker that decode and run models: the cores shared among workers."""
        return max(1, (os.cpu_count() or 1) // self.workers)

    def inference_timeout_seconds(self) -> float:
        return self.inference_timeout_ms / 1000.0

    def session_threads(self) -> int:
        # Measured in benchmarks/README.md: one ORT thread per caller beats fewer callers with
        # more ORT threads each, since decoding runs on the same threads.
        return self.intra_op_threads if self.intra_op_threads > 0 else 1


def env_name(field_name: str) -> str:
    return field_name.upper()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every variable once; raise SettingsError naming the first bad one."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in fields(Settings):
        raw = env.get(env_name(field.name))
        if raw is None:
            continue
        values[field.name] = field.metadata["parse"](env_name(field.name), raw)
    if "MODEL_VA_PATH" in env and "MODEL_VB_PATH" not in env:
        values["model_vb_path"] = None  # B only when given: see Settings.model_vb_path
    settings = Settings(**values)
    _check_together(settings, env)
    return settings


def _check_together(settings: Settings, env: Mapping[str, str]) -> None:
    if (settings.tls_cert_file is None) != (settings.tls_key_file is None):
        raise SettingsError(
            "TLS_CERT_FILE and TLS_KEY_FILE go together: set both for HTTPS, or neither"
        )
    if settings.tls_client_ca_file is not None and settings.tls_cert_file is None:
        raise SettingsError(
            "TLS_CLIENT_CA_FILE needs HTTPS: set TLS_CERT_FILE and TLS_KEY_FILE as well"
        )
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
    if settings.sticky_cookie_name.startswith("__Host-") and not settings.sticky_cookie_secure:
        raise SettingsError(
            f"STICKY_COOKIE_NAME={settings.sticky_cookie_name!r} is not allowed without "
            "STICKY_COOKIE_SECURE=true: browsers drop __Host- cookies that are not Secure"
        )
    if not settings.model_dir.is_dir():
        raise SettingsError(
            f"MODEL_DIR={str(settings.model_dir)!r} is not allowed: expected an existing folder"
        )
