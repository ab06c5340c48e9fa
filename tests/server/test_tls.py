"""HTTPS with TLS_CERT_FILE and TLS_KEY_FILE, and mutual TLS for /admin/* with
TLS_CLIENT_CA_FILE; the CLI speaks it with --cacert, --cert and --key. The tests make their own
CA with `cryptography`."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from tests.support.images import image_b64
from tests.support.server import ADMIN_TOKEN, REPO, refused_start_lines, running_server
from tests.support.tls import CertificateAuthority, make_test_ca

RED = {"image_b64": image_b64((255, 0, 0))}


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> CertificateAuthority:
    return make_test_ca(tmp_path_factory.mktemp("ca"))


def https(ca: CertificateAuthority, **extra: str) -> dict[str, str]:
    return {
        "TLS_CERT_FILE": str(ca.server.cert),
        "TLS_KEY_FILE": str(ca.server.key),
        "EDGESERVE_CACERT": str(ca.ca.cert),  # the test client's trust, ignored by the server
        **extra,
    }


def edgeserve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgeserve", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_inference_and_admin_work_over_https(ca):
    with running_server(WORKERS="2", **https(ca)) as server:
        assert server.url.startswith("https://")
        with server.client() as client:
            assert client.post("/v1/infer", json=RED).status_code == 200
        with server.admin() as admin:
            assert admin.get("/admin/config").status_code == 200


def test_plain_http_to_the_https_port_is_refused(ca):
    with running_server(**https(ca)) as server:
        plain = server.url.replace("https://", "http://")
        with pytest.raises(httpx.TransportError):
            httpx.get(plain + "/ready", timeout=5)
        with server.client() as client:  # and the server keeps serving
            assert client.get("/ready").status_code == 200


def test_a_client_ca_requires_a_client_certificate_for_admin_only(ca):
    with running_server(**https(ca, TLS_CLIENT_CA_FILE=str(ca.ca.cert))) as server:
        with server.admin() as admin:
            refused = admin.get("/admin/config")
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "client_certificate_required"
        with server.client() as client:
            assert client.post("/v1/infer", json=RED).status_code == 200
        certified = {"EDGESERVE_CERT": str(ca.client.cert), "EDGESERVE_KEY": str(ca.client.key)}
        server.env.update(certified)
        with server.admin() as admin:
            assert admin.get("/admin/config").status_code == 200


def test_a_certificate_of_another_ca_is_refused_at_the_handshake(ca, tmp_path):
    stranger = make_test_ca(tmp_path / "stranger", name="someone else")
    with running_server(**https(ca, TLS_CLIENT_CA_FILE=str(ca.ca.cert))) as server:
        server.env.update(
            {"EDGESERVE_CERT": str(stranger.client.cert), "EDGESERVE_KEY": str(stranger.client.key)}
        )
        with pytest.raises(httpx.TransportError), server.admin() as admin:
            admin.get("/admin/config")


def test_the_cli_speaks_https_and_mutual_tls_with_cacert_cert_and_key(ca):
    with running_server(**https(ca, TLS_CLIENT_CA_FILE=str(ca.ca.cert))) as server:
        admin = ["admin", "config", "get", "--json", "--url", server.url, "--token", ADMIN_TOKEN]
        trusted = ["--cacert", str(ca.ca.cert)]
        untrusted = edgeserve(*admin)
        without_cert = edgeserve(*trusted, *admin)
        with_cert = edgeserve(
            *trusted, "--cert", str(ca.client.cert), "--key", str(ca.client.key), *admin
        )
    assert untrusted.returncode != 0 and "Traceback" not in untrusted.stderr, untrusted.stderr
    assert len(untrusted.stderr.strip().splitlines()) == 1, untrusted.stderr
    assert without_cert.returncode != 0 and "client certificate" in without_cert.stderr
    assert with_cert.returncode == 0, with_cert.stderr
    assert '"ab_weight_a"' in with_cert.stdout, with_cert.stdout


def test_a_missing_cacert_file_is_one_usage_line():
    result = edgeserve("--cacert", "/nonexistent/ca.pem", "admin", "config", "get")
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "--cacert" in result.stderr


@pytest.mark.parametrize(
    ("variables", "fragment"),
    [
        ({"TLS_CERT_FILE": "/etc/hostname"}, "TLS_CERT_FILE and TLS_KEY_FILE go together"),
        ({"TLS_CERT_FILE": "/etc/hostname", "TLS_KEY_FILE": "/etc/hostname"}, "cannot be used"),
        ({"TLS_CLIENT_CA_FILE": "/etc/hostname"}, "TLS_CLIENT_CA_FILE needs HTTPS"),
    ],
    ids=["cert_without_key", "not_pem", "client_ca_without_https"],
)
def test_bad_tls_settings_stop_the_start_in_one_line(variables, fragment):
    models = {
        "MODEL_VA_PATH": str(REPO / "models/vA.onnx"),
        "MODEL_VB_PATH": str(REPO / "models/vB.onnx"),
    }
    lines = refused_start_lines({**models, **variables})
    assert len(lines) == 1 and fragment in lines[0], lines
