"""edgeserve disagreements list | show | export | sheet against a real server capturing what the
demo models disagree on (orange: A says red, B says orange)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from PIL import Image

from edgeserve.cli.contact_sheet import PADDING, THUMBNAIL, TILE_HEIGHT, TILE_WIDTH
from edgeserve.inference.model import file_version
from tests.cli.helpers import admin_args
from tests.support.images import ORANGE, image_bytes
from tests.support.metrics import metric_sum
from tests.support.server import REPO, Server, running_server
from tests.support.waiting import wait_until

CAPTURED = 5
WHITE = (255, 255, 255)


@pytest.fixture(scope="module")
def capturing(tmp_path_factory) -> Iterator[Server]:
    """A server that kept CAPTURED orange disagreements (trace ids orange-0...) and saw one red
    input both models agree on."""
    state = tmp_path_factory.mktemp("state") / "state.json"
    env = {"SHADOW_ENABLED": "true", "CAPTURE_DISAGREEMENTS": "10", "STATE_PATH": str(state)}
    with running_server(**env) as server, server.client() as client:
        sent = [(ORANGE, f"orange-{n}") for n in range(CAPTURED)] + [((255, 0, 0), "red-0")]
        for colour, trace_id in sent:
            headers = {"Content-Type": "image/png", "X-Request-ID": trace_id}
            r = client.post("/v1/infer", content=image_bytes(colour), headers=headers)
            assert r.status_code == 200, r.text
        wait_until(
            f"{CAPTURED} captures",
            lambda: metric_sum(server, "edgeserve_disagreement_captures_total", outcome="kept"),
            lambda kept: kept == CAPTURED,
        )
        yield server


def listed_ids(run, server: Server) -> list[str]:
    result = run("disagreements", "list", *admin_args(server.url), "--json")
    assert result.exit_code == 0, result.output
    return [record["id"] for record in json.loads(result.stdout)["disagreements"]]


def test_list_shows_each_disagreement_with_a_and_b_top_answers(run, capturing):
    result = run("disagreements", "list", *admin_args(capturing.url))
    assert result.exit_code == 0, result.output
    for n in range(CAPTURED):
        assert f"orange-{n}" in result.stdout, result.stdout
    assert "red-0" not in result.stdout and "orange 0." in result.stdout, result.stdout
    assert f"{CAPTURED} kept (at most 10)" in result.stdout, result.stdout


def test_show_gives_both_versions_and_both_ranked_answers(run, capturing):
    newest = listed_ids(run, capturing)[0]
    result = run("disagreements", "show", newest, *admin_args(capturing.url))
    assert result.exit_code == 0, result.output
    for name in ("vA.onnx", "vB.onnx"):
        assert file_version(REPO / "models" / name) in result.stdout, result.stdout
    assert "orange" in result.stdout and "red" in result.stdout, result.stdout
    assert "image/png" in result.stdout, result.stdout


def test_show_of_an_unknown_id_fails_in_one_line_with_the_catalogue_code(run, capturing):
    result = run("disagreements", "show", "no-such-id", *admin_args(capturing.url))
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "404 disagreement_not_found" in line, line


def test_export_writes_each_image_as_sent_beside_its_record(run, capturing, tmp_path):
    result = run("disagreements", "export", str(tmp_path / "out"), *admin_args(capturing.url))
    assert result.exit_code == 0, result.output
    for capture_id in listed_ids(run, capturing):
        assert (tmp_path / "out" / f"{capture_id}.png").read_bytes() == image_bytes(ORANGE)
        record = json.loads((tmp_path / "out" / f"{capture_id}.json").read_text())
        assert record["id"] == capture_id and record["b"]["predictions"][0]["label"] == "orange"
    assert len(list((tmp_path / "out").iterdir())) == 2 * CAPTURED


def tile_centres(columns: int, rows: int) -> list[tuple[int, int]]:
    middle = PADDING + THUMBNAIL // 2
    return [
        (column * TILE_WIDTH + middle, row * TILE_HEIGHT + middle)
        for row in range(rows)
        for column in range(columns)
    ]


def test_sheet_writes_a_png_with_one_tile_per_disagreement(run, capturing, tmp_path):
    sheet = tmp_path / "sheet.png"
    args = ["-o", str(sheet), "--columns", "2", *admin_args(capturing.url)]
    result = run("disagreements", "sheet", *args)
    assert result.exit_code == 0, result.output
    with Image.open(sheet) as image:
        assert image.format == "PNG"
        assert image.size == (2 * TILE_WIDTH, 3 * TILE_HEIGHT), image.size  # 5 tiles, 2 a row
        pixels = [image.convert("RGB").getpixel(xy) for xy in tile_centres(2, 3)]
    assert pixels == [ORANGE] * CAPTURED + [WHITE], pixels


def test_sheet_limit_draws_only_the_newest(run, capturing, tmp_path):
    sheet = tmp_path / "sheet.png"
    args = ["-o", str(sheet), "--limit", "2", *admin_args(capturing.url)]
    assert run("disagreements", "sheet", *args).exit_code == 0
    with Image.open(sheet) as image:
        assert image.size == (2 * TILE_WIDTH, TILE_HEIGHT), image.size


def test_sheet_with_nothing_captured_says_capture_is_off_and_fails(run, server, tmp_path):
    result = run("disagreements", "sheet", "-o", str(tmp_path / "s.png"), *admin_args(server.url))
    assert result.exit_code == 1, result.output
    assert "capture is off" in result.stderr and "nothing to draw" in result.stderr, result.stderr
    assert not (tmp_path / "s.png").exists()


def test_without_the_token_list_fails_in_one_line(run, capturing):
    result = run("disagreements", "list", *admin_args(capturing.url, token=None))
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "needs the admin token" in line, line
