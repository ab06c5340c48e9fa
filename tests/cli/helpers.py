"""Helpers for the CLI tests: argument lists and background traffic."""

from __future__ import annotations

import random
import threading

import httpx

from tests.support.images import image_b64
from tests.support.server import ADMIN_TOKEN


def admin_args(url: str | list[str], token: str | None = ADMIN_TOKEN) -> list[str]:
    urls = [url] if isinstance(url, str) else url
    args = [part for u in urls for part in ("--url", u)]
    return [*args, "--token", token] if token else args


FEEDBACK_PAUSE_SECONDS = 0.02
"""With feedback, at most 50 labelled answers a second per server: however fast the machine,
a few seconds of them cannot settle a 3-point accuracy gate (the interval stays wider)."""


class Traffic:
    """Background /v1/infer requests, so the server has something to measure; with `feedback`
    each answer's token is posted back, labelled right on a seeded coin flip (50 % accuracy),
    at a bounded pace (`truth` instead: every answer labelled so). Each request is a new client
    unless `sticky`: then one client, which keeps its cookie."""

    def __init__(
        self,
        url: str,
        colour: tuple[int, int, int] = (255, 0, 0),
        feedback: bool = False,
        sticky: bool = False,
        truth: str | None = None,
    ):
        self.stop = threading.Event()
        self.statuses: list[int] = []
        body = {"image_b64": image_b64(colour), **({"top_k": 2} if feedback else {})}
        coin = random.Random(url)

        def loop() -> None:
            with httpx.Client(base_url=url, timeout=10) as client:
                while not self.stop.is_set():
                    if not sticky:
                        client.cookies.clear()  # a new client each time: no sticky variant
                    answer = client.post("/v1/infer", json=body)
                    self.statuses.append(answer.status_code)
                    if feedback and answer.status_code == 200:
                        self.stop.wait(FEEDBACK_PAUSE_SECONDS)  # B's shadow answer comes in
                        ranked = answer.json()["predictions"]
                        label = truth or ranked[coin.randrange(2)]["label"]
                        self.label(client, answer.json(), label)

        self.thread = threading.Thread(target=loop, daemon=True)

    @staticmethod
    def label(client: httpx.Client, answer: dict, label: str) -> None:
        """Post `label` as the truth for the answer."""
        client.post(
            "/v1/feedback", json={"feedback_token": answer["feedback_token"], "label": label}
        )

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)
