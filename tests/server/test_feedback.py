"""Ground-truth feedback on real servers: signed tokens, scored once, counted per variant."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from edgeserve.traffic.feedback import issue
from tests.support.images import image_b64
from tests.support.metrics import metric_sum
from tests.support.server import running_server

SECRET = "feedback-secret-for-tests-0123456789abcdef"
RED = {"image_b64": image_b64((255, 0, 0)), "top_k": 2}


@pytest.fixture(scope="module")
def pair():
    """Two instances sharing FEEDBACK_SECRET, as a fleet would; half the traffic to B."""
    settings = {"FEEDBACK_SECRET": SECRET, "AB_WEIGHT_B": "1", "STICKY_COOKIE": "false"}
    with running_server(**settings) as first, running_server(**settings) as second:
        yield first, second


def answer(server, **body) -> dict:
    with server.client() as client:
        r = client.post("/v1/infer", json={**RED, **body})
    assert r.status_code == 200, r.text
    return r.json()


def send(server, token: str, label: str):
    with server.client() as client:
        return client.post("/v1/feedback", json={"feedback_token": token, "label": label})


def test_every_answer_carries_a_feedback_token(pair):
    assert answer(pair[0])["feedback_token"]


def test_a_token_from_one_instance_is_scored_by_another(pair):
    first, second = pair
    given = answer(first)
    top1, other = (p["label"] for p in given["predictions"])
    r = send(second, given["feedback_token"], top1)
    assert r.status_code == 202, r.text
    assert r.json() == {
        "variant": given["variant"],
        "version": given["model"]["version"],
        "correct": True,
    }
    wrong = send(second, answer(first)["feedback_token"], other)
    assert wrong.status_code == 202 and wrong.json()["correct"] is False, wrong.text


def test_accuracy_per_variant_in_metrics_matches_what_was_sent(pair):
    _, second = pair
    sent = {("A", "correct"): 0, ("A", "wrong"): 0, ("B", "correct"): 0, ("B", "wrong"): 0}
    before = {
        key: metric_sum(second, "edgeserve_feedback_total", variant=key[0], outcome=key[1])
        for key in sent
    }
    for index in range(12):
        given = answer(second)
        top1, other = (p["label"] for p in given["predictions"])
        correct = index % 3 != 0
        assert send(second, given["feedback_token"], top1 if correct else other).status_code == 202
        sent[(given["variant"], "correct" if correct else "wrong")] += 1
    for (variant, outcome), count in sent.items():
        now = metric_sum(second, "edgeserve_feedback_total", variant=variant, outcome=outcome)
        assert now - before[(variant, outcome)] == count, (variant, outcome)


def test_a_replayed_token_is_refused_and_not_counted_twice(pair):
    first, _ = pair
    given = answer(first)
    label = given["predictions"][0]["label"]
    assert send(first, given["feedback_token"], label).status_code == 202
    counted = metric_sum(first, "edgeserve_feedback_total")
    replay = send(first, given["feedback_token"], label)
    assert replay.status_code == 409, replay.text
    assert replay.json()["error"]["code"] == "feedback_already_counted"
    assert metric_sum(first, "edgeserve_feedback_total") == counted


@pytest.mark.parametrize("claim", ["v", "m", "l", "e", "n"])
def test_a_token_with_any_field_altered_is_refused(pair, claim):
    given = answer(pair[0])
    body, _, signature = given["feedback_token"].partition(".")
    claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims[claim] = {"v": "A" if claims["v"] == "B" else "B", "e": claims["e"] + 10**6}.get(
        claim, "tampered"
    )
    forged = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    r = send(pair[1], f"{forged}.{signature}", given["predictions"][0]["label"])
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_feedback_token"


def test_a_forged_signature_is_refused(pair):
    given = answer(pair[0])
    forged = issue("x" * 40, variant="B", version="v", label="red", now=time.time(), ttl=60)
    r = send(pair[0], forged, given["predictions"][0]["label"])
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_feedback_token"


def test_an_expired_token_is_refused(pair):
    label = answer(pair[0])["predictions"][0]["label"]
    expired = issue(SECRET, variant="A", version="v", label=label, now=time.time() - 120, ttl=60)
    r = send(pair[0], expired, label)
    assert r.status_code == 400, r.text
    assert "expired" in r.json()["error"]["message"]


def test_an_unknown_label_is_refused_and_not_counted(pair):
    first, _ = pair
    counted = metric_sum(first, "edgeserve_feedback_total")
    r = send(first, answer(first)["feedback_token"], "not-a-label")
    assert r.status_code == 422 and r.json()["error"]["code"] == "unknown_label", r.text
    assert metric_sum(first, "edgeserve_feedback_total") == counted


@pytest.mark.parametrize(
    "body", [{}, {"feedback_token": "x"}, {"feedback_token": "x", "label": 3}, {"label": "red"}]
)
def test_a_malformed_body_is_refused(pair, body):
    with pair[0].client() as client:
        r = client.post("/v1/feedback", json=body)
    assert r.status_code == 422, r.text


def test_feedback_is_rate_limited_like_inference():
    with running_server(FEEDBACK_SECRET=SECRET, RATE_LIMIT_RPS="1", RATE_LIMIT_BURST="2") as server:
        with server.client() as client:
            statuses = [
                client.post(
                    "/v1/feedback", json={"feedback_token": "x", "label": "red"}
                ).status_code
                for _ in range(4)
            ]
    assert statuses[-1] == 429, statuses


def test_without_a_secret_there_is_no_token_and_feedback_is_off(server):
    with server.client() as client:
        r = client.post("/v1/infer", json=RED)
        assert "feedback_token" not in r.json()
        off = client.post("/v1/feedback", json={"feedback_token": "x", "label": "red"})
    assert off.status_code == 403 and off.json()["error"]["code"] == "feedback_disabled"
