"""Shadowed A answers and their feedback, each over a new connection so it lands on any worker."""

from __future__ import annotations

from tests.support.images import ORANGE, image_b64
from tests.support.metrics import metric_sum
from tests.support.server import Server
from tests.support.waiting import wait_until

SECRET = "paired-feedback-secret-0123456789abcdef"


def shadowed_answers(server: Server, count: int) -> list[dict]:
    """`count` A answers, each asked over a new connection (any worker), all compared by B."""
    answers = []
    for _ in range(count):
        with server.client() as client:
            answers.append(client.post("/v1/infer", json={"image_b64": image_b64(ORANGE)}).json())
    wait_until(
        f"{count} shadow comparisons",
        lambda: metric_sum(server, "edgeserve_shadow_comparisons_total"),
        lambda compared: compared >= count,
    )
    return answers


def label_each(server: Server, answers: list[dict]) -> None:
    """Feedback for every answer, each over a new connection: it lands on any worker."""
    for answer in answers:
        with server.client() as client:
            body = {"feedback_token": answer["feedback_token"], "label": "orange"}
            response = client.post("/v1/feedback", json=body)
            assert response.status_code == 202, response.text
