"""Settings: every variable read once into one validated object; a bad value names itself."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import pytest

from edgeserve.cli.serve import read_env_file
from edgeserve.server.serve import prepare_metrics_dir
from edgeserve.settings import Settings, SettingsError, load_settings
from tests.support.env_example import env_example_lines
from tests.support.server import refused_start_lines

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


def test_a_model_a_given_without_a_model_b_leaves_slot_b_empty():
    settings = load_settings({"MODEL_VA_PATH": MODELS["MODEL_VA_PATH"]})
    assert settings.model_vb_path is None, settings.model_vb_path


def test_with_no_model_given_the_demo_pair_is_served(monkeypatch):
    monkeypatch.chdir(REPO)  # the defaults are relative: models/vA.onnx, models/vB.onnx
    settings = load_settings({})
    assert (settings.model_va_path, settings.model_vb_path) == (
        Path("models/vA.onnx"),
        Path("models/vB.onnx"),
    ), settings


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
    assert len([f for f in Settings.__dataclass_fields__]) == sum(
        1 for line in listed if "=" in line and not line.startswith("#")
    )


@pytest.mark.parametrize(
    ("variable", "value"), [("AB_WEIGHT_B", "-0.5"), ("STICKY_COOKIE_NAME", "a;b")]
)
def test_a_bad_setting_stops_serve_with_exit_2_and_one_line(variable, value):
    lines = refused_start_lines({**MODELS, variable: value})
    assert len(lines) == 1 and f"{variable}={value!r}" in lines[0], lines


def test_copied_env_example_keeps_hot_loads_in_the_folder_of_model_va_path(tmp_path):
    # .env.example's empty MODEL_DIR must not pin hot loads to ./models for a custom A model.
    custom_a = tmp_path / "vA.onnx"
    custom_a.write_bytes((REPO / "models/vA.onnx").read_bytes())
    copied = read_env_file(REPO / ".env.example")
    settings = load_settings({**copied, "MODEL_VA_PATH": str(custom_a), "MODEL_VB_PATH": ""})
    assert settings.model_dir == tmp_path


def test_prometheus_multiproc_dir_from_settings_is_the_metrics_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # restored after the test
    folder = tmp_path / "metrics"
    settings = load_settings({**MODELS, "PROMETHEUS_MULTIPROC_DIR": str(folder)})
    assert prepare_metrics_dir(settings) == folder
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(folder)  # what prometheus-client reads


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PORT": "70000"}, "PORT='70000' is not allowed: expected a whole number 0..65535"),
        ({"PORT": "http"}, "PORT='http' is not allowed: expected a whole number 0..65535"),
        (
            {"MAX_BODY_BYTES": "0"},
            "MAX_BODY_BYTES='0' is not allowed: expected a whole number >= 1",
        ),
        ({"AB_WEIGHT_A": "lots"}, "AB_WEIGHT_A='lots' is not allowed: expected a number >= 0"),
        ({"AB_WEIGHT_A": "inf"}, "AB_WEIGHT_A='inf' is not allowed: expected a finite number >= 0"),
        (
            {"CANARY_MAX_LATENCY_RATIO": "0.5"},
            "CANARY_MAX_LATENCY_RATIO='0.5' is not allowed: expected a finite number >= 1",
        ),
        (
            {"SHADOW_ENABLED": "maybe"},
            "SHADOW_ENABLED='maybe' is not allowed: expected true or false "
            "(also 1/0, yes/no, on/off)",
        ),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT='xml' is not allowed: expected one of json, console"),
        ({"MODEL_VA_PATH": " "}, "MODEL_VA_PATH=' ' is not allowed: expected a file path"),
        (
            {"AB_WEIGHT_A": "0", "AB_WEIGHT_B": "0"},
            "AB_WEIGHT_A=0 and AB_WEIGHT_B=0 are not allowed together: "
            "at least one weight must be above 0",
        ),
        (
            {"MODEL_VB_PATH": "/nowhere/vB.onnx"},
            "MODEL_VB_PATH='/nowhere/vB.onnx' is not allowed: expected an existing ONNX model "
            "file (run 'edgeserve models demo' to build the demo models)",
        ),
        (
            {"MODEL_VB_PATH": "", "AB_WEIGHT_B": "0.5"},
            "AB_WEIGHT_B='0.5' is not allowed without a B model: "
            "set MODEL_VB_PATH or AB_WEIGHT_B=0",
        ),
        (
            {"MODEL_DIR": "/nowhere"},
            "MODEL_DIR='/nowhere' is not allowed: expected an existing folder",
        ),
        (
            {"CAPTURE_DISAGREEMENTS": "20000"},
            "CAPTURE_DISAGREEMENTS='20000' is not allowed: expected a whole number 0..10000",
        ),
    ],
)
def test_each_refusal_says_exactly_what_is_allowed(env, message):
    with pytest.raises(SettingsError) as raised:
        load_settings({**MODELS, **env})
    assert str(raised.value) == message


def test_values_at_the_edges_and_every_word_for_true_and_false_are_accepted(tmp_path):
    settings = load_settings(
        {
            **MODELS,
            "PORT": "65535",
            "ADMIN_TOKEN": "x" * 16,
            "AB_WEIGHT_B": "0.5",
            "SHADOW_ENABLED": "yes",
            "CANARY_ENABLED": "ON",
            "STICKY_COOKIE": "off",
            "MODEL_DIR": str(tmp_path),
        }
    )
    assert (settings.port, settings.admin_token, settings.ab_weight_b) == (65535, "x" * 16, 0.5)
    assert (settings.shadow_enabled, settings.canary_enabled, settings.sticky_cookie) == (
        True,
        True,
        False,
    )
    assert settings.model_dir == tmp_path, "a MODEL_DIR given is kept"


def test_without_a_mapping_the_process_environment_is_read(monkeypatch):
    for name, value in {**MODELS, "PORT": "1234"}.items():
        monkeypatch.setenv(name, value)
    assert load_settings().port == 1234


def test_every_setting_has_a_one_line_meaning():
    documented = env_example_lines()[0::2]
    assert all(line.startswith("# ") and len(line) > 2 for line in documented), documented


def test_every_setting_has_a_parser_for_its_variable():
    unparsed = [
        field.name for field in fields(Settings) if not callable(field.metadata.get("parse"))
    ]
    assert unparsed == [], unparsed


def test_inference_threads_share_the_cores_among_workers_and_sessions_default_to_one():
    cores = os.cpu_count() or 1
    assert Settings(workers=1).inference_threads() == cores
    assert Settings(workers=2).inference_threads() == max(1, cores // 2)
    assert isinstance(Settings(workers=1).inference_threads(), int)  # it sizes a thread pool
    assert Settings(workers=cores + 1).inference_threads() == 1
    assert Settings().session_threads() == 1
    assert Settings(intra_op_threads=3).session_threads() == 3


@pytest.mark.parametrize("value", ["bad name", "a;b", "caf\u00e9", "x=y", ""])
def test_sticky_cookie_name_must_be_an_rfc6265_token(value):
    with pytest.raises(SettingsError) as raised:
        load_settings({**MODELS, "STICKY_COOKIE_NAME": value})
    assert "STICKY_COOKIE_NAME=" in str(raised.value), raised.value


def test_a_host_prefixed_cookie_name_needs_sticky_cookie_secure():
    with pytest.raises(SettingsError) as raised:
        load_settings({**MODELS, "STICKY_COOKIE_NAME": "__Host-ab"})
    assert "STICKY_COOKIE_SECURE=true" in str(raised.value), raised.value
    secure = {**MODELS, "STICKY_COOKIE_NAME": "__Host-ab", "STICKY_COOKIE_SECURE": "true"}
    assert load_settings(secure).sticky_cookie_secure


@pytest.mark.parametrize("name", ["ADMIN_TOKEN", "METRICS_TOKEN"])
@pytest.mark.parametrize("value", [" " * 16, "with-a\nnewline-0123", "tab\tseparated-01234"])
def test_tokens_must_be_visible_characters_only(name, value):
    with pytest.raises(SettingsError) as raised:
        load_settings({**MODELS, name: value})
    message = str(raised.value)
    assert message.startswith(f"{name} has a space, control") and value not in message, message


@pytest.mark.parametrize("value", ["10.0.0.0/33", "proxy.local", "1.2.3.4,,nope"])
def test_trusted_proxies_must_be_addresses_or_cidrs(value):
    with pytest.raises(SettingsError) as raised:
        load_settings({**MODELS, "TRUSTED_PROXIES": value})
    assert "TRUSTED_PROXIES=" in str(raised.value), raised.value


def test_trusted_proxies_are_read_as_a_list():
    settings = load_settings({**MODELS, "TRUSTED_PROXIES": " 10.0.0.0/8, 127.0.0.1 "})
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")


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


def test_state_url_at_the_port_edges_and_empty():
    assert load_settings({**MODELS, "STATE_URL": "redis://h:65535/0"}).state_url == (
        "redis://h:65535/0"
    )
    assert load_settings({**MODELS, "STATE_URL": " "}).state_url == ""
    with pytest.raises(SettingsError) as raised:
        load_settings({**MODELS, "STATE_URL": "redis://:pw@h:65536/0"})
    assert str(raised.value) == (
        "STATE_URL='redis://***@h:65536/0' is not allowed: expected redis://host:port/db "
        "(for example redis://127.0.0.1:6379/0), or leave it empty for STATE_PATH"
    )
