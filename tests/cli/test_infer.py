"""edgeserve infer: offline with a model file, or via a running server with --url."""

from __future__ import annotations

import errno
import io
import json
import shutil
from pathlib import Path

from rich.console import Console

from tests.support.images import ORANGE, image_bytes
from tests.support.models import save_nhwc_probabilities
from tests.support.server import REPO

IMAGES = REPO / "tests" / "images"


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_offline_infer_prints_a_table_of_labels_scores_and_bars(run):
    result = run("infer", str(IMAGES / "red.png"), "--top-k", "3")
    assert result.exit_code == 0, result.output
    assert "red.png" in result.stdout and "vA" in result.stdout, result.stdout
    assert "red" in result.stdout and "1.000" in result.stdout, result.stdout
    assert "████████████████████" in result.stdout, result.stdout


def test_offline_json_is_one_object_per_image_of_a_folder(run):
    result = run("infer", str(IMAGES), "--json")
    assert result.exit_code == 0, result.output
    records = json_lines(result.stdout)
    assert [r["image"].rsplit("/", 1)[-1] for r in records] == sorted(
        p.name for p in IMAGES.glob("*.png")
    ), records
    assert all(r["model"]["name"] == "vA" and r["variant"] == "A" for r in records), records


def test_variant_b_uses_model_b_which_knows_orange(run):
    result = run("infer", str(IMAGES / "orange.png"), "--variant", "B", "--json")
    assert result.exit_code == 0, result.output
    (record,) = json_lines(result.stdout)
    assert record["model"]["name"] == "vB", record
    assert record["predictions"][0]["label"] == "orange", record


def test_model_path_overrides_the_variant(run):
    model = REPO / "models" / "vB.onnx"
    result = run("infer", str(IMAGES / "red.png"), "--model", str(model), "--json")
    assert result.exit_code == 0, result.output
    (record,) = json_lines(result.stdout)
    assert record["model"]["name"] == "vB" and record["variant"] is None, record


def test_a_model_path_works_outside_the_repository_whatever_model_va_path_says(
    run, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # the default MODEL_VA_PATH, models/vA.onnx, is not here
    model = REPO / "models" / "vB.onnx"
    unset = {"MODEL_VA_PATH": None, "MODEL_VB_PATH": None}
    result = run("infer", str(IMAGES / "red.png"), "--model", str(model), "--json", env=unset)
    assert result.exit_code == 0, result.output
    (record,) = json_lines(result.stdout)
    assert record["model"]["name"] == "vB", record


def test_output_that_is_not_a_terminal_keeps_long_lines_whole(run, tmp_path):
    image = tmp_path / ("a-long-name-of-an-image-" * 6 + ".png")
    shutil.copy(IMAGES / "red.png", image)
    result = run("infer", str(image), env={"COLUMNS": None})
    assert result.exit_code == 0, result.output
    heading = [line for line in result.stdout.splitlines() if line.startswith(str(image))]
    assert heading and "(vA " in heading[0], result.stdout


def test_top_k_is_honoured(run):
    result = run("infer", str(IMAGES / "red.png"), "--top-k", "2", "--json")
    assert result.exit_code == 0, result.output
    (record,) = json_lines(result.stdout)
    assert len(record["predictions"]) == 2, record


def test_img_size_reaches_the_model(run, tmp_path):
    # A model fixed at 32x32 takes --img-size 32 and refuses 64: the size is not dropped.
    model = save_nhwc_probabilities(tmp_path / "fixed32.onnx", size=32)
    fits = run("infer", str(IMAGES / "red.png"), "--model", str(model), "--img-size", "32")
    assert fits.exit_code == 0, fits.output
    refused = run("infer", str(IMAGES / "red.png"), "--model", str(model), "--img-size", "64")
    assert refused.exit_code == 2, refused.output
    assert "--img-size 64 is not accepted" in refused.stderr, refused.stderr


def test_missing_image_file_fails_in_one_line_naming_it(run):
    result = run("infer", "no/such/image.png")
    assert result.exit_code == 1, result.output  # docs/operations.md section 7: exit 1
    assert result.stderr.strip().splitlines() == [
        "error: image file no/such/image.png does not exist: check the path"
    ], result.stderr


def test_a_file_that_is_not_an_image_fails_in_one_line_naming_it(run, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    result = run("infer", str(bad))
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: {bad} is not an image: give a PNG or JPEG file"
    ], result.stderr


def test_an_unreadable_image_file_fails_in_one_line_naming_it(run, tmp_path, monkeypatch):
    locked = tmp_path / "locked.png"
    locked.write_bytes(image_bytes((255, 0, 0)))
    read_bytes = Path.read_bytes

    def refuse(path: Path) -> bytes:  # chmod 000 does not stop root, so refuse like the OS
        if path == locked:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", refuse)
    result = run("infer", str(locked))
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: cannot read image file {locked}: Permission denied"
    ], result.stderr


def test_one_bad_image_among_many_still_classifies_the_others(run, tmp_path):
    shutil.copy(IMAGES / "red.png", tmp_path / "a.png")
    (tmp_path / "b.png").write_text("junk")
    result = run("infer", str(tmp_path), "--json")
    assert result.exit_code == 1, result.output
    assert [r["image"] for r in json_lines(result.stdout)] == [str(tmp_path / "a.png")]
    assert str(tmp_path / "b.png") in result.stderr, result.stderr


def test_a_folder_says_how_many_files_it_skipped(run, tmp_path):
    shutil.copy(IMAGES / "red.png", tmp_path / "a.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "b.gif").write_bytes(b"GIF89a")
    result = run("infer", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    assert [r["image"] for r in json_lines(result.stdout)] == [str(tmp_path / "a.png")]
    assert result.stderr.strip().splitlines() == [
        f"warning: skipped 2 file(s) in {tmp_path} that are not .png, .jpg or .jpeg"
    ], result.stderr


def test_a_bad_variant_is_a_usage_error(run):
    result = run("infer", str(IMAGES / "red.png"), "--variant", "C")
    assert result.exit_code == 2, result.output
    assert "--variant 'C' is not allowed: use A or B" in result.stderr, result.stderr


def test_an_out_of_range_top_k_is_a_one_line_usage_error(run):
    result = run("infer", str(IMAGES / "red.png"), "--top-k", "0")
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--top-k" in result.stderr, result.stderr


def test_many_images_show_a_progress_bar_on_a_terminal(run, monkeypatch):
    from edgeserve.cli import output

    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    monkeypatch.setattr(output, "stderr", terminal)
    result = run("infer", str(IMAGES), "--json")
    assert result.exit_code == 0, result.output
    assert "classifying" in screen.getvalue() and "4/4" in screen.getvalue(), screen.getvalue()


def test_url_sends_the_images_to_the_server_and_shows_the_variant(run, server):
    result = run("infer", str(IMAGES / "red.png"), "--url", server.url)
    assert result.exit_code == 0, result.output
    assert "variant A (vA" in result.stdout, result.stdout


def test_url_json_carries_the_server_answer(run, server, tmp_path):
    (tmp_path / "orange.png").write_bytes(image_bytes(ORANGE))
    result = run("infer", str(tmp_path / "orange.png"), "--url", server.url, "--json")
    assert result.exit_code == 0, result.output
    (record,) = json_lines(result.stdout)
    assert record["variant"] == "A" and record["trace_id"], record
    assert record["model"]["name"] == "vA", record


def test_url_server_refusal_names_the_image_and_the_server_message(run, server, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_text("not an image")
    result = run("infer", str(junk), "--url", server.url)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines == [f"error: {junk} is not an image: give a PNG or JPEG file"], lines


def test_url_unreachable_is_one_line_naming_the_url(run, down_url):
    result = run("infer", str(IMAGES), "--url", down_url)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines() == [
        f'error: cannot reach {down_url} (connection refused): is "edgeserve serve" running?'
    ], result.stderr


def test_url_with_an_offline_model_option_is_a_usage_error(run, server):
    result = run("infer", str(IMAGES / "red.png"), "--url", server.url, "--variant", "B")
    assert result.exit_code == 2, result.output
    assert "with --url the server picks the variant" in result.stderr, result.stderr


def test_a_malformed_url_is_a_usage_error(run):
    result = run("infer", str(IMAGES / "red.png"), "--url", "localhost:8080")
    assert result.exit_code == 2, result.output
    assert "is not a server URL" in result.stderr, result.stderr
