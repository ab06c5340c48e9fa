"""GET /openapi.json describes exactly the routes the app serves."""

from __future__ import annotations

import json
import re

from edgeserve.server.routes.openapi import DOCUMENT
from edgeserve.settings import Settings


def served_operations() -> set[tuple[str, str]]:
    from edgeserve.server.app import create_app

    app = create_app(Settings(), state_file="unused.json")
    operations = set()
    for route in app.router.routes:
        path = "/" + route.path.lstrip("/")
        path = re.sub(r"<(\w+)(:[^>]*)?>", r"{\1}", path)
        operations |= {(method.lower(), path) for method in route.methods if method != "HEAD"}
    return operations


def test_every_route_is_documented_and_every_documented_operation_is_served():
    documented = {
        (method, path) for path, item in json.loads(DOCUMENT)["paths"].items() for method in item
    }
    served = served_operations()
    assert documented == served, (
        f"undocumented: {sorted(served - documented)}; not served: {sorted(documented - served)}"
    )


def test_the_document_is_served_and_is_openapi_3_1(server):
    with server.client() as client:
        r = client.get("/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["openapi"].startswith("3.1")
