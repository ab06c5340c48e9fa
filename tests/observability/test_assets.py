"""Offline checks of the local stack, the recording rules and the Grafana dashboard."""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

import jsonschema
import pytest
from prometheus_client.metrics import MetricWrapperBase

from edgeserve.observability import metrics

from .assets import (
    COMPOSE_SCHEMA_PATH,
    DASHBOARD_PATH,
    GRAFANA_PROVISIONING,
    PROMETHEUS_CONFIG_PATH,
    REPO,
    RULES_PATH,
    RULES_TEST_PATH,
    load_yaml,
    repo_path_in_container,
)
from .promql import (
    dashboard_expressions,
    dashboard_panels,
    metric_names,
    recording_rule_names,
    recording_rules,
)

# The series prometheus-client writes for each kind of metric.
SERIES_SUFFIXES = {
    "counter": ("_total",),
    "histogram": ("_bucket", "_sum", "_count"),
    "gauge": ("",),
}


def exported_series() -> set[str]:
    """Every series the server exports, read from the metrics module itself (never copied)."""
    families = [
        family
        for metric in vars(metrics).values()
        if isinstance(metric, MetricWrapperBase)
        for family in metric.describe()
    ]
    return {family.name + suffix for family in families for suffix in SERIES_SUFFIXES[family.type]}


EXPORTED_SERIES = exported_series()

RULE_NAME = re.compile(r"^(?:[a-z]+(?:_[a-z]+)*:)?edgeserve_[a-z0-9_]+:[a-z0-9_]+$")


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD_PATH.read_text())


def published_host_ips(service: dict[str, Any]) -> list[str]:
    """Host address of every published port; '' when a port is published on every address."""
    addresses = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            addresses.append(port.get("host_ip", ""))
            continue
        parts = str(port).split(":")
        addresses.append(":".join(parts[:-2]) if len(parts) >= 3 else "")
    return addresses


# compose.yml


def test_compose_file_matches_the_compose_specification(compose):
    schema = json.loads(COMPOSE_SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_compose_publishes_ports_only_on_loopback(compose):
    for name, service in compose["services"].items():
        assert set(published_host_ips(service)) <= {"127.0.0.1"}, (name, service.get("ports"))


def test_compose_publishes_edgeserve_prometheus_and_grafana(compose):
    published = {name: service.get("ports") for name, service in compose["services"].items()}
    assert published == {
        "edgeserve": ["127.0.0.1:8080:8080"],
        "prometheus": ["127.0.0.1:9090:9090"],
        "grafana": ["127.0.0.1:3000:3000"],
    }


def test_compose_pins_third_party_images_to_a_version_tag(compose):
    for name in ("prometheus", "grafana"):
        image = compose["services"][name]["image"]
        tag = image.rpartition(":")[2] if ":" in image else ""
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image}"


def test_compose_edgeserve_listens_on_all_container_addresses(compose):
    assert compose["services"]["edgeserve"]["build"] == "."
    assert compose["services"]["edgeserve"]["environment"]["HOST"] == "0.0.0.0"


def test_compose_admin_token_comes_only_from_the_environment(compose):
    assert compose["services"]["edgeserve"]["environment"]["ADMIN_TOKEN"] == "${ADMIN_TOKEN:-}"


def test_compose_edgeserve_healthcheck_probes_healthz(compose):
    check = compose["services"]["edgeserve"]["healthcheck"]["test"]
    command = check if isinstance(check, str) else " ".join(check)
    assert "'://127.0.0.1:8080/healthz'" in command and "TLS_CERT_FILE" in command, check


def test_compose_grafana_lets_anonymous_users_view_only(compose):
    environment = compose["services"]["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert environment["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


# Prometheus and Grafana configuration as mounted by compose


def test_prometheus_config_is_the_file_compose_mounts(compose):
    mounted = repo_path_in_container(compose, "prometheus", "/etc/prometheus/prometheus.yml")
    assert mounted == PROMETHEUS_CONFIG_PATH


def test_prometheus_config_loads_the_rules_file_compose_mounts(compose, prometheus_config):
    rule_files = prometheus_config["rule_files"]
    mounted = [repo_path_in_container(compose, "prometheus", path) for path in rule_files]
    assert mounted == [RULES_PATH], rule_files


def test_prometheus_scrapes_the_edgeserve_service(compose, prometheus_config):
    jobs = {job["job_name"]: job for job in prometheus_config["scrape_configs"]}
    assert list(jobs) == ["edgeserve"]
    targets = [t for sc in jobs["edgeserve"]["static_configs"] for t in sc["targets"]]
    assert targets == ["edgeserve:8080"]
    assert "edgeserve" in compose["services"]
    assert prometheus_config["global"]["scrape_interval"] == "5s"


def test_grafana_dashboard_provider_reads_the_directory_compose_mounts(compose):
    mounted = repo_path_in_container(compose, "grafana", "/etc/grafana/provisioning")
    assert mounted == GRAFANA_PROVISIONING
    providers = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "dashboards.yml")["providers"]
    paths = [repo_path_in_container(compose, "grafana", p["options"]["path"]) for p in providers]
    assert paths == [DASHBOARD_PATH.parent], providers


def test_grafana_default_datasource_is_the_compose_prometheus(compose):
    datasources = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert [(d["uid"], d["type"], d["url"], d["isDefault"]) for d in datasources] == [
        ("prometheus", "prometheus", "http://prometheus:9090", True)
    ]
    assert "prometheus" in compose["services"]


def test_grafana_home_dashboard_is_the_mounted_dashboard(compose):
    home = compose["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert repo_path_in_container(compose, "grafana", home) == DASHBOARD_PATH


# Grafana dashboard


def test_dashboard_has_its_uid_title_and_schema_version(dashboard):
    assert dashboard["uid"] == "edge-serve-ab"
    assert dashboard["title"] == "edgeserve A/B rollout"
    assert dashboard["schemaVersion"] >= 39


def test_dashboard_has_a_prometheus_datasource_variable(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"


def test_dashboard_query_variables_read_edgeserve_metrics(dashboard):
    queries = [v for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for variable in queries:
        assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        query = (
            variable["query"] if isinstance(variable["query"], str) else variable["query"]["query"]
        )
        match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", query)
        assert match and match.group(1) in EXPORTED_SERIES, query


def test_every_dashboard_panel_has_the_datasource_variable_and_a_query(dashboard):
    for panel in dashboard_panels(dashboard):
        title = panel.get("title")
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        exprs = [t.get("expr", "").strip() for t in panel.get("targets", [])]
        assert exprs and all(exprs), title
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], title


def test_dashboard_panel_ids_are_unique(dashboard):
    ids = [panel["id"] for panel in dashboard_panels(dashboard)]
    assert len(ids) == len(set(ids)), ids


def test_dashboard_expressions_leave_no_variable_unsubstituted():
    expressions = dashboard_expressions(DASHBOARD_PATH)
    assert expressions
    assert [(title, expr) for title, expr in expressions if "$" in expr] == []


def test_dashboard_reads_only_exported_metrics_and_recording_rules():
    known = EXPORTED_SERIES | set(recording_rule_names(RULES_PATH))
    unknown = {
        (title, name)
        for title, expr in dashboard_expressions(DASHBOARD_PATH)
        for name in metric_names(expr)
        if name not in known
    }
    assert unknown == set()


def test_dashboard_metric_names_start_with_edgeserve_or_are_recording_rules():
    rules = set(recording_rule_names(RULES_PATH))
    names = {
        name for _, expr in dashboard_expressions(DASHBOARD_PATH) for name in metric_names(expr)
    }
    assert names
    assert {n for n in names if not n.startswith("edgeserve_") and n not in rules} == set()


def test_every_recording_rule_is_shown_on_the_dashboard():
    used = {
        name for _, expr in dashboard_expressions(DASHBOARD_PATH) for name in metric_names(expr)
    }
    assert set(recording_rule_names(RULES_PATH)) - used == set()


# Recording rules


def test_recording_rules_read_only_exported_edgeserve_metrics():
    for name, expr in recording_rules(RULES_PATH):
        selected = metric_names(expr)
        assert selected, name
        assert selected <= EXPORTED_SERIES, (name, selected - EXPORTED_SERIES)


def test_recording_rule_names_follow_level_metric_operations():
    names = recording_rule_names(RULES_PATH)
    assert names
    assert [n for n in names if not RULE_NAME.match(n)] == []
    assert len(names) == len(set(names)), names


def test_recording_rules_cover_the_rollout_signals():
    assert set(recording_rule_names(RULES_PATH)) >= {
        "variant:edgeserve_inferences:rate1m",
        "variant:edgeserve_inference_errors:ratio_rate1m",
        "variant:edgeserve_traffic_share:ratio_rate1m",
        "variant:edgeserve_inference_latency_seconds:p50_1m",
        "variant:edgeserve_inference_latency_seconds:p95_1m",
        "variant:edgeserve_inference_latency_seconds:p99_1m",
        "edgeserve_shadow_agreement:ratio_rate1m",
        "edgeserve_shadow_no_common_label:ratio_rate1m",
        "route:edgeserve_rate_limited:rate1m",
        "route_status:edgeserve_http_requests:rate1m",
    }


def test_recording_rules_keep_the_job_label():
    for name, expr in recording_rules(RULES_PATH):
        groupings = re.findall(r"\bby\s*\(([^)]*)\)", expr)
        assert groupings, name
        for labels in groupings:
            assert "job" in {label.strip() for label in labels.split(",")}, (name, labels)


def test_recording_rules_unit_tests_load_the_rules_file():
    rule_files = load_yaml(RULES_TEST_PATH)["rule_files"]
    assert [(RULES_TEST_PATH.parent / f).resolve() for f in rule_files] == [RULES_PATH]


def test_every_recording_rule_has_a_unit_test():
    tested = {
        name
        for test in load_yaml(RULES_TEST_PATH)["tests"]
        for case in test.get("promql_expr_test", [])
        for name in metric_names(case["expr"])
    }
    assert set(recording_rule_names(RULES_PATH)) - tested == set()


# The PromQL helper itself


def test_metric_names_leaves_out_functions_labels_keywords_and_numbers():
    expr = (
        'histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{stage="total", x=~"y|z"}[1m])))'
        " / on (job) group_left () (sum without (instance) (b_total offset 5m) > 1e-9)"
        " or vector(0) * c:d:rate1m"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c:d:rate1m"}


def test_dashboard_variables_become_all_values_and_a_fixed_window(tmp_path):
    dashboard = {
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {"name": "job", "type": "query", "includeAll": True, "allValue": ".+"},
            ]
        },
        "panels": [
            {
                "title": "p",
                "targets": [{"expr": 'rate(x{job=~"$job"}[$__rate_interval]) + ${job:regex}'}],
            }
        ],
    }
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dashboard))
    assert dashboard_expressions(path) == [("p", 'rate(x{job=~".+"}[1m]) + .+')]


def test_repo_paths_resolve_through_directory_mounts(compose):
    provisioning = PurePosixPath("/etc/grafana/provisioning/datasources/prometheus.yml")
    mounted = repo_path_in_container(compose, "grafana", str(provisioning))
    assert mounted == REPO / "local/grafana/provisioning/datasources/prometheus.yml"
