"""HTTPS: TLS_CERT_FILE and TLS_KEY_FILE, and mutual TLS for /admin/* with TLS_CLIENT_CA_FILE.

The context is built in each worker (Sanic's cert loader hook, since an SSLContext does not
cross a process boundary) and checked once in the main process first, so a bad file stops the
start with one line. With a client CA, a client certificate is optional at the handshake (so
inference works without one) but must verify when given; /admin/* then refuses a connection
that presented none."""

from __future__ import annotations

import ssl
from typing import Any

from sanic.http.tls.context import create_context

from edgeserve.settings import Settings, SettingsError


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context, or None for plain HTTP; SettingsError names a bad file."""
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    try:
        context = create_context(str(settings.tls_cert_file), str(settings.tls_key_file))
    except (OSError, ssl.SSLError) as error:
        raise SettingsError(
            f"TLS_CERT_FILE={str(settings.tls_cert_file)!r} / TLS_KEY_FILE="
            f"{str(settings.tls_key_file)!r} cannot be used ({_reason(error)}): give a PEM "
            "certificate and its private key"
        ) from None
    if settings.tls_client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(settings.tls_client_ca_file))
        except (OSError, ssl.SSLError) as error:
            raise SettingsError(
                f"TLS_CLIENT_CA_FILE={str(settings.tls_client_ca_file)!r} cannot be used "
                f"({_reason(error)}): give the PEM certificate of the CA that signs admin "
                "client certificates"
            ) from None
        context.verify_mode = ssl.CERT_OPTIONAL
    return context


def cert_loader(settings: Settings) -> type:
    """A Sanic cert loader class that builds this instance's context in each worker."""

    class EdgeCertLoader:
        def __init__(self, ssl_data: Any):
            self.ssl_data = ssl_data

        def load(self, app: Any) -> ssl.SSLContext | None:
            return server_context(settings)

    return EdgeCertLoader


def has_client_certificate(transport: Any) -> bool:
    """Whether the connection presented a client certificate the CA verified."""
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    return ssl_object is not None and bool(ssl_object.getpeercert())


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or getattr(error, "reason", None) or str(error)
