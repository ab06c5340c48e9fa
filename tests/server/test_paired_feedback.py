"""Paired feedback on a real server: an A answer that B shadowed is judged for both models."""

from __future__ import annotations

from tests.support.images import ORANGE, image_b64
from tests.support.metrics import metric_sum
from tests.support.paired import SECRET, label_each, shadowed_answers
from tests.support.server import running_server
from tests.support.waiting import wait_until

PAIRED = "edgeserve_feedback_paired_total"
ANSWERS = 20


def answer_and_label(server, colour, truth: str) -> None:
    """Ask A, wait until B's shadow answer is compared, then post the true label."""
    with server.client() as client:
        before = metric_sum(server, "edgeserve_shadow_comparisons_total")
        answer = client.post("/v1/infer", json={"image_b64": image_b64(colour)}).json()
        wait_until(
            "the shadow comparison",
            lambda: metric_sum(server, "edgeserve_shadow_comparisons_total"),
            lambda compared: compared > before,
        )
        body = {"feedback_token": answer["feedback_token"], "label": truth}
        assert client.post("/v1/feedback", json=body).status_code == 202


def test_feedback_on_a_shadowed_a_answer_counts_whether_a_and_b_were_right():
    with running_server(SHADOW_ENABLED="true", FEEDBACK_SECRET=SECRET) as server:
        answer_and_label(server, ORANGE, "orange")  # A said yellow, B orange
        answer_and_label(server, ORANGE, "yellow")
        answer_and_label(server, (255, 0, 0), "red")  # both said red
        cells = {
            (a, b): metric_sum(server, PAIRED, a_outcome=a, b_outcome=b)
            for a in ("correct", "wrong")
            for b in ("correct", "wrong")
        }
    assert cells == {
        ("wrong", "correct"): 1,
        ("correct", "wrong"): 1,
        ("correct", "correct"): 1,
        ("wrong", "wrong"): 0,
    }, cells


def test_feedback_on_an_a_answer_that_b_did_not_shadow_is_not_paired():
    with running_server(FEEDBACK_SECRET=SECRET) as server, server.client() as client:
        answer = client.post("/v1/infer", json={"image_b64": image_b64(ORANGE)}).json()
        body = {"feedback_token": answer["feedback_token"], "label": "orange"}
        assert client.post("/v1/feedback", json=body).status_code == 202
        assert metric_sum(server, "edgeserve_feedback_total", variant="A") == 1
        assert metric_sum(server, PAIRED) == 0


def test_feedback_pairs_whichever_worker_ran_the_shadow_and_whichever_it_lands_on():
    env = {"WORKERS": "2", "SHADOW_MAX_INFLIGHT": str(ANSWERS)}
    with running_server(SHADOW_ENABLED="true", FEEDBACK_SECRET=SECRET, **env) as server:
        label_each(server, shadowed_answers(server, ANSWERS))
        assert metric_sum(server, PAIRED) == ANSWERS
        # A said yellow and B orange on every one of them
        assert metric_sum(server, PAIRED, a_outcome="wrong", b_outcome="correct") == ANSWERS


def test_a_pair_counts_once_even_when_its_token_is_posted_to_every_worker():
    env = {"WORKERS": "2", "SHADOW_MAX_INFLIGHT": str(ANSWERS)}
    with running_server(SHADOW_ENABLED="true", FEEDBACK_SECRET=SECRET, **env) as server:
        answers = shadowed_answers(server, ANSWERS)
        label_each(server, answers)
        for answer in answers * 2:  # a replay on the worker that has not seen it is counted
            with server.client() as client:
                body = {"feedback_token": answer["feedback_token"], "label": "orange"}
                client.post("/v1/feedback", json=body)
        assert metric_sum(server, PAIRED) == ANSWERS


def test_an_unusable_answer_folder_leaves_inference_and_feedback_answered_and_unpaired(tmp_path):
    (tmp_path / "shadow-answers").write_text("a file where the folder should be")
    env = {"STATE_PATH": str(tmp_path / "state.json"), "WORKERS": "2"}
    with running_server(SHADOW_ENABLED="true", FEEDBACK_SECRET=SECRET, **env) as server:
        label_each(server, shadowed_answers(server, 2))
        assert metric_sum(server, PAIRED) == 0
        errors = "edgeserve_feedback_paired_store_errors_total"
        assert metric_sum(server, errors, operation="remember") == 2
        assert metric_sum(server, errors, operation="take") == 2
