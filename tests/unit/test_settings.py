"""Settings: every variable read once into one validated object; a bad value names itself."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeserve.settings import Settings, SettingsError, env_example_lines, load_settings

REPO = Path(__file__).resolve().parents[2]
MODELS = {
    "MODEL_VA_PATH": str(REPO / "models/vA.onnx"),
    "MODEL_VB_PATH": str(REPO / "models/vB.onnx"),
}


def test_defaults_match_the_contract():
    settings = load_settings(MODELS)
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8080, 1)
    assert settings.max_body_bytes == 8388608
    assert (settings.rate_limit_rps, settings.rate_limit_burst) == (100, 200)
    assert (settings.ab_weight_a, settings.ab_weight_b) == (1.0, 0.0)
    assert not settings.shadow_enabled and not settings.canary_enabled and settings.sticky_cookie
    assert settings.sticky_cookie_name == "edgeserve_ab"
    assert settings.admin_token == "" and not settings.admin_enabled
    assert settings.model_dir == Path(MODELS["MODEL_VA_PATH"]).parent
    assert (settings.log_level, settings.log_format) == ("info", "json")


def test_empty_model_vb_path_means_single_model_mode():
    assert load_settings({**MODELS, "MODEL_VB_PATH": ""}).model_vb_path is None


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("AB_WEIGHT_A", "-1", "AB_WEIGHT_A='-1'"),
        ("AB_WEIGHT_B", "lots", "AB_WEIGHT_B='lots'"),
        ("PORT", "http", "PORT='http'"),
        ("WORKERS", "0", "WORKERS='0'"),
        ("MAX_BODY_BYTES", "1.5", "MAX_BODY_BYTES='1.5'"),
        ("SHADOW_ENABLED", "maybe", "SHADOW_ENABLED='maybe'"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT='xml'"),
        ("MODEL_VA_PATH", "/nowhere/model.onnx", "MODEL_VA_PATH='/nowhere/model.onnx'"),
        ("ADMIN_TOKEN", "short", "ADMIN_TOKEN has 5 characters"),
        ("RATE_LIMIT_RPS", "nan", "RATE_LIMIT_RPS='nan'"),
    ],
)
def test_bad_value_is_named_with_what_is_allowed(name, value, fragment):
    with pytest.raises(SettingsError) as raised:
        load_settings({**MODELS, name: value})
    message = str(raised.value)
    assert fragment in message and "expected" in message, message
    assert "\n" not in message


def test_both_weights_zero_is_refused():
    with pytest.raises(SettingsError, match="AB_WEIGHT_A=0 and AB_WEIGHT_B=0"):
        load_settings({**MODELS, "AB_WEIGHT_A": "0", "AB_WEIGHT_B": "0"})


def test_admin_token_is_never_echoed():
    with pytest.raises(SettingsError) as raised:
        load_settings({**MODELS, "ADMIN_TOKEN": "sekrit-value"})
    assert "sekrit" not in str(raised.value)


def test_env_example_lists_every_variable_with_its_default():
    listed = (REPO / ".env.example").read_text().splitlines()
    for line in env_example_lines():
        assert line in listed, line
    assert (
        len([f for f in Settings.__dataclass_fields__])
        == sum(1 for line in listed if "=" in line and not line.startswith("#")) - 1
    )  # PROMETHEUS_MULTIPROC_DIR is read by prometheus-client, not Settings


def test_bad_setting_stops_serve_with_exit_2_and_one_line():
    env = {"PATH": "/usr/bin:/bin", **MODELS, "AB_WEIGHT_B": "-0.5"}
    result = subprocess.run(
        [sys.executable, "-m", "edgeserve", "serve", "--port", "0"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "AB_WEIGHT_B='-0.5'" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "redis://redis.edge.svc:6379/3", "redis://:pw@h:1/15"]
)
def test_state_url_takes_redis_host_port_db(url):
    assert load_settings({**MODELS, "STATE_URL": url}).state_url == url


@pytest.mark.parametrize(
    "url", ["redis://h/0", "http://h:6379/0", "redis://h:0/0", "redis://h:6379", "h:6379"]
)
def test_state_url_in_another_form_is_refused(url):
    with pytest.raises(SettingsError, match="STATE_URL"):
        load_settings({**MODELS, "STATE_URL": url})


def test_state_url_password_is_never_echoed():
    with pytest.raises(SettingsError) as raised:
        load_settings({**MODELS, "STATE_URL": "redis://:sekrit@h/0"})
    assert "sekrit" not in str(raised.value)
