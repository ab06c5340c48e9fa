"""The one HTTP client for an edgeserve server; every failure becomes a one-line ClientError."""

from __future__ import annotations

import errno
import os
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from edgeserve.errors import one_line
from edgeserve.model_upload import ModelUpload

if TYPE_CHECKING:
    import httpx

DEFAULT_URL = "http://127.0.0.1:8080"
TIMEOUT_SECONDS = {"connect": 2, "read": 30, "write": 30, "pool": 2}


class ClientError(Exception):
    """A call that did not succeed; `message` is the one line shown to the operator."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    @property
    def unreachable(self) -> bool:
        """True when no HTTP answer came back at all (refused, timed out, reset)."""
        return self.status is None


@dataclass(frozen=True)
class Inference:
    """A /v1/infer answer with the headers that say who answered."""

    body: dict[str, Any]
    variant: str | None
    trace_id: str | None


TLS_VARIABLES = ("EDGESERVE_CACERT", "EDGESERVE_CERT", "EDGESERVE_KEY")
"""Where the CLI's --cacert, --cert and --key land, so every command's client sees them."""


def tls_verify() -> ssl.SSLContext | bool:
    """How to check an https server: the system's CAs, or EDGESERVE_CACERT's; with
    EDGESERVE_CERT (and EDGESERVE_KEY) a client certificate is presented (mutual TLS)."""
    cacert, cert, key = (os.environ.get(name) or None for name in TLS_VARIABLES)
    if cacert is None and cert is None:
        return True
    try:
        context = ssl.create_default_context(cafile=cacert)
        if cert is not None:
            context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or error
        raise ClientError(
            f"cannot use the TLS files --cacert {cacert} / --cert {cert} / --key {key} "
            f"({reason}): give PEM files that exist"
        ) from None
    return context


class EdgeserveClient:
    """Calls one server's health, inference and admin routes; the token only goes in a header."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        timeout: httpx.Timeout | None = None,
        transport: httpx.BaseTransport | None = None,
    ):
        # Imported here, not at the top: every `edgeserve` process loads this module, and the
        # server, which never calls out, would pay httpx's import on each start
        import httpx

        self.url = url.rstrip("/")
        self._sends_token = bool(token)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url,
            timeout=timeout or httpx.Timeout(**TIMEOUT_SECONDS),
            headers=headers,
            transport=transport,
            verify=tls_verify(),
        )

    def __repr__(self) -> str:  # never the token
        return f"EdgeserveClient({self.url!r})"

    def __enter__(self) -> EdgeserveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- health ---------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """GET /healthz: the process is alive."""
        return self._json(self._send("GET", "/healthz"))

    def ready(self) -> dict[str, Any]:
        """GET /ready: {"ready": bool, ...}; a 503 "not ready" is an answer, not an error."""
        return self._json(self._send("GET", "/ready"), ok=(200, 503))

    def metrics_text(self) -> str:
        """GET /metrics: the Prometheus exposition text."""
        return self._checked(self._send("GET", "/metrics")).text

    # --- inference ------------------------------------------------------------------

    def infer(
        self,
        image_bytes: bytes,
        img_size: int | None = None,
        top_k: int = 5,
        request_id: str | None = None,
    ) -> Inference:
        """POST /v1/infer as a binary upload: the file as the body, no base64 to encode or parse."""
        params: dict[str, int] = {"top_k": top_k}
        if img_size is not None:
            params["img_size"] = img_size
        headers = {"Content-Type": "application/octet-stream"}  # the server reads the format
        if request_id:
            headers["X-Request-ID"] = request_id
        response = self._send(
            "POST", "/v1/infer", content=image_bytes, params=params, headers=headers
        )
        return Inference(
            body=self._json(response),
            variant=response.headers.get("X-Edgeserve-Variant"),
            trace_id=response.headers.get("Trace-Id"),
        )

    # --- admin ----------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """GET /admin/config."""
        return self._json(self._send("GET", "/admin/config"))

    def shadow(self) -> dict[str, Any]:
        """GET /admin/shadow: A's top-1 labels against B's since the current B started."""
        return self._json(self._send("GET", "/admin/shadow"))

    def set_config(self, **fields: Any) -> dict[str, Any]:
        """POST /admin/config with the given runtime fields; answers the new config."""
        return self._json(self._send("POST", "/admin/config", json=fields))

    def warmup(self) -> dict[str, Any]:
        """POST /admin/warmup: runs and ms per loaded variant."""
        return self._json(self._send("POST", "/admin/warmup"))

    def promote(self) -> dict[str, Any]:
        """POST /admin/promote: B's model becomes A; answers previous_a, new_a and the config."""
        return self._json(self._send("POST", "/admin/promote"))

    def rollback(self) -> dict[str, Any]:
        """POST /admin/rollback: the A of before the last promote serves A again."""
        return self._json(self._send("POST", "/admin/rollback"))

    def load_model(
        self,
        slot: str,
        path: str | None = None,
        *,
        version: str | None = None,
        allow_label_change: bool = False,
    ) -> dict[str, Any]:
        """POST /admin/models/{slot}: hot-load a model file from the server's models folder,
        or a pushed model by its version."""
        body: dict[str, Any] = {"path": path} if version is None else {"version": version}
        if allow_label_change:
            body["allow_label_change"] = True
        return self._json(self._send("POST", f"/admin/models/{slot}", json=body))

    def push_model(self, upload: ModelUpload) -> dict[str, Any]:
        """POST /admin/uploads: stream a model (its sidecar first) for the server to keep;
        answers its version and whether the server already held it."""
        response = self._send(
            "POST",
            "/admin/uploads",
            params=upload.query(),
            content=upload.body(),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(upload.content_length()),  # refused early when too big
            },
        )
        return self._json(response, ok=(200, 201))

    def collect_models(self, *, dry_run: bool) -> dict[str, Any]:
        """POST /admin/gc: remove the kept models retention lets go (or only list them)."""
        return self._json(self._send("POST", "/admin/gc", json={"dry_run": dry_run}))

    def disagreements(self) -> dict[str, Any]:
        """GET /admin/disagreements: the captured disagreements, newest first."""
        return self._json(self._send("GET", "/admin/disagreements"))

    def disagreement(self, disagreement_id: str) -> dict[str, Any]:
        """GET /admin/disagreements/{id}: one capture's record, its image in base64."""
        return self._json(
            self._send("GET", f"/admin/disagreements/{quote(disagreement_id, safe='')}")
        )

    def disagreement_image(self, disagreement_id: str) -> bytes:
        """GET /admin/disagreements/{id}/image: the image bytes as the client sent them."""
        path = f"/admin/disagreements/{quote(disagreement_id, safe='')}/image"
        return self._checked(self._send("GET", path)).content

    # --- plumbing -------------------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        import httpx

        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as error:
            raise self._timeout(error) from None
        except httpx.TransportError as error:
            raise ClientError(
                f'cannot reach {self.url} ({_reason(error)}): is "edgeserve serve" running?'
            ) from None

    def _timeout(self, error: httpx.TimeoutException) -> ClientError:
        import httpx

        if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
            return ClientError(
                f"cannot reach {self.url} (connection timed out): "
                'is "edgeserve serve" running and the address right?'
            )
        return ClientError(
            f"{self.url} did not answer in time ({type(error).__name__}): "
            "the server is overloaded or stuck; check its logs"
        )

    def _checked(self, response: httpx.Response, ok: tuple[int, ...] = (200,)) -> httpx.Response:
        if response.status_code not in ok:
            raise self._error(response)
        return response

    def _json(self, response: httpx.Response, ok: tuple[int, ...] = (200,)) -> dict[str, Any]:
        self._checked(response, ok)
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ClientError(
                f"{self.url} answered {response.request.url.path} with something that is not "
                "edgeserve JSON: is --url pointing at an edgeserve server?",
                response.status_code,
            )
        return data

    def _error(self, response: httpx.Response) -> ClientError:
        status = response.status_code
        code, message = _envelope(response)
        if status == 401 and not self._sends_token:
            text = (
                f"{self.url} needs the admin token (401 unauthorized): "
                "pass --token or set ADMIN_TOKEN"
            )
        elif status == 401:
            text = (
                f"{self.url} refused the admin token (401 unauthorized): "
                "pass the server's token with --token or ADMIN_TOKEN"
            )
        elif status == 403 and code == "admin_disabled":
            text = (
                f"the admin API is disabled on {self.url} (403): "
                "start the server with ADMIN_TOKEN set (16+ characters)"
            )
        elif message is not None:
            text = f"{self.url} answered {status} {code}: {message}"
        else:
            text = (
                f"{self.url} answered {status} {response.reason_phrase} for "
                f"{response.request.method} {response.request.url.path}: "
                "is --url pointing at an edgeserve server?"
            )
        return ClientError(text, status, code)


def _envelope(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of the server's error envelope, or (None, None) if it is not one."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None, None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None, None
    return str(error.get("code") or "error"), one_line(error["message"], limit=None)


_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.EADDRNOTAVAIL: "address not available",
}


def _reason(error: httpx.TransportError) -> str:
    """A few words for why the connection failed, from the innermost OS error."""
    import httpx

    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, OSError) and cause.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[cause.errno]
        if "Name or service not known" in str(cause) or "nodename nor servname" in str(cause):
            return "host name not found"
        cause = cause.__cause__ or cause.__context__
    text = str(error).lower()
    for words in ("connection refused", "connection reset", "name or service not known"):
        if words in text:
            return "host name not found" if words.startswith("name") else words
    if isinstance(error, httpx.RemoteProtocolError):
        return "the server closed the connection"
    return one_line(error, limit=None)
