"""EdgeserveClient against a real server: answers, and one-line ClientErrors for failures."""

from __future__ import annotations

import httpx
import pytest

from edgeserve.client import ClientError, EdgeserveClient
from tests.support.images import image_bytes
from tests.support.metrics import metric_sum
from tests.support.server import ADMIN_TOKEN

RED = image_bytes((255, 0, 0))


def test_health_ready_and_metrics_answer(server):
    with EdgeserveClient(server.url) as client:
        assert client.health() == {"ok": True}
        assert client.ready()["ready"] is True
        assert "edgeserve_state_generation" in client.metrics_text()


def test_infer_returns_the_answer_the_variant_header_and_the_echoed_trace_id(server):
    with EdgeserveClient(server.url) as client:
        answer = client.infer(RED, top_k=2, request_id="client-test-1")
    assert answer.variant == "A", answer
    assert answer.trace_id == "client-test-1", answer
    assert answer.body["predictions"][0]["label"] == "red", answer.body
    assert len(answer.body["predictions"]) == 2, answer.body


def test_infer_sends_the_file_itself_as_the_body_not_base64(server):
    sent_before = metric_sum(server, "edgeserve_request_body_bytes_sum", route="/v1/infer")
    with EdgeserveClient(server.url) as client:
        client.infer(RED, img_size=32)
    sent = metric_sum(server, "edgeserve_request_body_bytes_sum", route="/v1/infer") - sent_before
    assert sent == len(RED), f"the server read {sent} bytes for a {len(RED)}-byte file"


def test_admin_calls_send_the_bearer_token(server):
    with EdgeserveClient(server.url, ADMIN_TOKEN) as client:
        config = client.config()
    assert config["models"]["A"]["name"] == "vA", config


def test_unreachable_server_is_named_with_a_hint_to_start_it(down_url):
    with EdgeserveClient(down_url) as client, pytest.raises(ClientError) as caught:
        client.health()
    expected = f'cannot reach {down_url} (connection refused): is "edgeserve serve" running?'
    assert caught.value.message == expected, caught.value.message
    assert caught.value.unreachable


def test_wrong_token_is_a_401_error_that_never_contains_the_token(server):
    secret = "wrong-secret-token-0000"
    with EdgeserveClient(server.url, secret) as client, pytest.raises(ClientError) as caught:
        client.config()
    assert caught.value.status == 401, caught.value.message
    assert "401" in caught.value.message and "--token" in caught.value.message
    assert secret not in caught.value.message and secret not in repr(client)


def test_admin_disabled_is_a_403_error_saying_so(no_admin_server):
    with (
        EdgeserveClient(no_admin_server.url, ADMIN_TOKEN) as client,
        pytest.raises(ClientError) as caught,
    ):
        client.warmup()
    assert caught.value.status == 403, caught.value.message
    assert "admin API is disabled" in caught.value.message, caught.value.message


def test_refused_value_carries_the_server_message(server):
    with (
        EdgeserveClient(server.url, ADMIN_TOKEN) as client,
        pytest.raises(ClientError) as caught,
    ):
        client.set_config(ab_weight_a=0, ab_weight_b=0)
    assert caught.value.status == 422, caught.value.message
    assert "cannot both be 0" in caught.value.message, caught.value.message


def test_a_non_edgeserve_answer_is_reported_as_such():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="<html>nginx</html>")

    client = EdgeserveClient("http://example.test", transport=httpx.MockTransport(handler))
    with client, pytest.raises(ClientError) as caught:
        client.health()
    assert "is --url pointing at an edgeserve server?" in caught.value.message


def test_a_slow_server_is_a_timeout_error_not_a_traceback():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = EdgeserveClient("http://example.test", transport=httpx.MockTransport(handler))
    with client, pytest.raises(ClientError) as caught:
        client.health()
    assert "did not answer in time" in caught.value.message, caught.value.message
