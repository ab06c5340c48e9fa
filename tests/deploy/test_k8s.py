"""deploy/k8s/edge-serve-ab.yaml is valid Kubernetes and wires the server the way it expects."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFEST = REPO_ROOT / "deploy" / "k8s" / "edge-serve-ab.yaml"
NAMESPACE = "edge-serve-ab"
# The newest Kubernetes the installed kubernetes-validate ships schemas for.
KUBERNETES_VERSION = kubernetes_validate.latest_version()

# Every variable `edgeserve serve` reads (docs: DESIGN.md section 2 and .env.example).
SERVER_ENV = {
    "HOST",
    "PORT",
    "WORKERS",
    "MAX_BODY_BYTES",
    "MAX_IMAGE_PIXELS",
    "RATE_LIMIT_RPS",
    "RATE_LIMIT_BURST",
    "AB_WEIGHT_A",
    "AB_WEIGHT_B",
    "SHADOW_ENABLED",
    "CANARY_ENABLED",
    "STICKY_COOKIE",
    "STICKY_COOKIE_NAME",
    "ADMIN_TOKEN",
    "MODEL_VA_PATH",
    "MODEL_VB_PATH",
    "MODEL_DIR",
    "STATE_PATH",
    "STATE_URL",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "PROMETHEUS_MULTIPROC_DIR",
    "INTRA_OP_THREADS",
    "GRACEFUL_SHUTDOWN_SECONDS",
}
REQUIRED_KINDS = {
    "Namespace",
    "ConfigMap",
    "Secret",
    "Deployment",
    "StatefulSet",
    "Service",
    "HorizontalPodAutoscaler",
    "PodDisruptionBudget",
    "NetworkPolicy",
}
MIN_ADMIN_TOKEN_CHARS = 16

DOCS: list[dict[str, Any]] = [doc for doc in yaml.safe_load_all(MANIFEST.read_text()) if doc]


def one(kind: str, **match: Any) -> dict[str, Any]:
    found = [
        doc
        for doc in DOCS
        if doc["kind"] == kind
        and all(doc.get("spec", {}).get(key) == value for key, value in match.items())
    ]
    assert len(found) == 1, f"expected one {kind} {match or ''}, found {len(found)}"
    return found[0]


def named(kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in DOCS if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def deployment() -> dict[str, Any]:
    return one("Deployment")


def pod_spec() -> dict[str, Any]:
    return deployment()["spec"]["template"]["spec"]


def container() -> dict[str, Any]:
    containers = pod_spec()["containers"]
    assert len(containers) == 1, containers
    return containers[0]


def configmap_data() -> dict[str, str]:
    return one("ConfigMap")["data"]


def container_port(port: int | str) -> int:
    """A probe's port as a number, resolving a named container port."""
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container()["ports"] if "name" in p}
    assert port in named, f"probe port {port!r} is not a named container port: {named}"
    return named[port]


def name_of(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


@pytest.mark.parametrize("doc", DOCS, ids=name_of)
def test_document_validates_against_kubernetes_schema(doc: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{name_of(doc)} at {list(error.path)}: {error.message}")


def test_manifest_holds_every_required_kind() -> None:
    kinds = {doc["kind"] for doc in DOCS}
    assert kinds >= REQUIRED_KINDS, REQUIRED_KINDS - kinds


def test_every_object_lives_in_the_edge_serve_ab_namespace() -> None:
    assert one("Namespace")["metadata"]["name"] == NAMESPACE
    outside = [
        name_of(doc)
        for doc in DOCS
        if doc["kind"] != "Namespace" and doc["metadata"].get("namespace") != NAMESPACE
    ]
    assert not outside, outside


def test_deployment_runs_two_replicas_of_edgeserve_0_1_0() -> None:
    assert deployment()["spec"]["replicas"] == 2
    assert container()["image"] == "edgeserve:0.1.0"


def test_container_listens_on_port_8080() -> None:
    ports = [p["containerPort"] for p in container()["ports"]]
    assert ports == [8080], ports


@pytest.mark.parametrize(
    ("probe", "path"),
    [("startupProbe", "/ready"), ("readinessProbe", "/ready"), ("livenessProbe", "/healthz")],
)
def test_probe_hits_its_endpoint_on_port_8080(probe: str, path: str) -> None:
    http_get = container()[probe]["httpGet"]
    assert http_get["path"] == path, http_get
    assert container_port(http_get["port"]) == 8080, http_get


def test_configmap_sets_only_variables_the_server_reads() -> None:
    unknown = set(configmap_data()) - SERVER_ENV
    assert not unknown, unknown


def test_configmap_binds_all_interfaces() -> None:
    assert configmap_data()["HOST"] == "0.0.0.0"


def test_configmap_variables_are_listed_in_env_example() -> None:
    env_example = REPO_ROOT / ".env.example"
    if not env_example.is_file():
        pytest.skip(".env.example not written yet")
    listed = {
        line.split("=", 1)[0].strip()
        for line in env_example.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    # The metrics folder belongs to prometheus-client, not to Settings.
    missing = set(configmap_data()) - listed - {"PROMETHEUS_MULTIPROC_DIR"}
    assert not missing, missing


def test_secret_holds_only_admin_token() -> None:
    secret = one("Secret")
    keys = set(secret.get("data", {})) | set(secret.get("stringData", {}))
    assert keys == {"ADMIN_TOKEN"}, keys


def test_shipped_admin_token_is_one_the_server_accepts() -> None:
    # The server refuses to start with 1 to 15 characters; empty disables the admin API.
    token = one("Secret").get("stringData", {}).get("ADMIN_TOKEN", "")
    assert len(token) == 0 or len(token) >= MIN_ADMIN_TOKEN_CHARS, len(token)


def test_container_reads_admin_token_from_the_secret() -> None:
    secret_name = one("Secret")["metadata"]["name"]
    refs = {
        env["name"]: env["valueFrom"]["secretKeyRef"]
        for env in container().get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    }
    assert refs.get("ADMIN_TOKEN") == {"name": secret_name, "key": "ADMIN_TOKEN"}, refs


def test_container_reads_the_configmap() -> None:
    configmap_name = one("ConfigMap")["metadata"]["name"]
    sources = [s["configMapRef"]["name"] for s in container()["envFrom"] if "configMapRef" in s]
    assert sources == [configmap_name], sources


def test_container_has_cpu_and_memory_requests_and_limits() -> None:
    resources = container()["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources.get(bound, {})), resources


def test_pod_runs_as_non_root() -> None:
    assert pod_spec()["securityContext"]["runAsNonRoot"] is True
    assert container()["securityContext"]["allowPrivilegeEscalation"] is False


def test_root_filesystem_is_read_only_with_tmp_on_an_emptydir() -> None:
    assert container()["securityContext"]["readOnlyRootFilesystem"] is True
    empty_dirs = {v["name"] for v in pod_spec()["volumes"] if "emptyDir" in v}
    mounts = {m["mountPath"]: m["name"] for m in container()["volumeMounts"]}
    assert mounts.get("/tmp") in empty_dirs, mounts


def test_metrics_and_state_paths_are_on_writable_mounts() -> None:
    empty_dirs = {v["name"] for v in pod_spec()["volumes"] if "emptyDir" in v}
    writable = [m["mountPath"] for m in container()["volumeMounts"] if m["name"] in empty_dirs]
    data = configmap_data()
    for name in ("PROMETHEUS_MULTIPROC_DIR", "STATE_PATH"):
        if not data.get(name):
            continue
        assert any(
            data[name] == mount or data[name].startswith(mount.rstrip("/") + "/")
            for mount in writable
        ), (name, data[name], writable)


def test_pods_carry_prometheus_scrape_annotations() -> None:
    annotations = deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations.get("prometheus.io/scrape") == "true", annotations
    assert annotations.get("prometheus.io/port") == "8080", annotations
    assert annotations.get("prometheus.io/path") == "/metrics", annotations


def test_prestop_sleep_fits_in_the_grace_period() -> None:
    command = container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep", command
    pre_stop = float(command[1])
    shutdown = float(configmap_data().get("GRACEFUL_SHUTDOWN_SECONDS", "15"))
    grace = pod_spec()["terminationGracePeriodSeconds"]
    assert pre_stop + shutdown < grace, (pre_stop, shutdown, grace)


def test_service_exposes_port_8080_to_the_pods() -> None:
    ports = named("Service", "edgeserve")["spec"]["ports"]
    assert [p["port"] for p in ports] == [8080], ports
    assert container_port(ports[0]["targetPort"]) == 8080, ports


def test_headless_service_selects_every_pod() -> None:
    headless = one("Service", clusterIP="None")
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    selector = headless["spec"]["selector"]
    assert selector.items() <= labels.items(), (selector, labels)


def test_deployment_selector_matches_its_pods() -> None:
    selector = deployment()["spec"]["selector"]["matchLabels"]
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items(), (selector, labels)


def test_autoscaler_scales_the_deployment_from_two_replicas() -> None:
    hpa = one("HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment()["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] >= 2, hpa["spec"]


def test_disruption_budget_covers_the_pods() -> None:
    selector = one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items(), (selector, labels)


def test_network_policy_admits_http_on_port_8080() -> None:
    policy = named("NetworkPolicy", "edgeserve")
    selector = policy["spec"]["podSelector"]["matchLabels"]
    labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= labels.items(), (selector, labels)
    ports = [p["port"] for rule in policy["spec"]["ingress"] for p in rule.get("ports", [])]
    assert 8080 in ports or "http" in ports, ports


# --- the shared rollout state: Redis ------------------------------------------------------


def redis_set() -> dict[str, Any]:
    return one("StatefulSet")


def redis_pod_labels() -> dict[str, str]:
    return redis_set()["spec"]["template"]["metadata"]["labels"]


def redis_container() -> dict[str, Any]:
    containers = redis_set()["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, containers
    return containers[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return selector.items() <= labels.items()


def test_state_url_names_the_redis_service_and_its_port() -> None:
    url = urlsplit(configmap_data()["STATE_URL"])
    service = named("Service", url.hostname or "")
    assert url.scheme == "redis", url
    assert url.port in [p["port"] for p in service["spec"]["ports"]], (url, service["spec"])
    assert selects(service["spec"]["selector"], redis_pod_labels()), service["spec"]


def test_redis_appends_every_write_to_a_file_on_a_persistent_volume() -> None:
    args = redis_container()["args"]
    assert args[args.index("--appendonly") + 1] == "yes", args
    data_dir = args[args.index("--dir") + 1]
    claims = {t["metadata"]["name"] for t in redis_set()["spec"]["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in redis_container()["volumeMounts"]}
    assert mounts.get(data_dir) in claims, (data_dir, mounts, claims)


def test_redis_has_cpu_and_memory_requests_and_limits() -> None:
    resources = redis_container()["resources"]
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources.get(bound, {})), resources


def test_redis_meets_the_restricted_pod_security_standard() -> None:
    pod = redis_set()["spec"]["template"]["spec"]
    context = redis_container()["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["readOnlyRootFilesystem"] is True


def test_no_edgeserve_selector_picks_the_redis_pods() -> None:
    edgeserve_selectors = {
        "Deployment": deployment()["spec"]["selector"]["matchLabels"],
        "Service/edgeserve": named("Service", "edgeserve")["spec"]["selector"],
        "Service/edgeserve-pods": named("Service", "edgeserve-pods")["spec"]["selector"],
        "PodDisruptionBudget": one("PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        "NetworkPolicy/edgeserve": named("NetworkPolicy", "edgeserve")["spec"]["podSelector"][
            "matchLabels"
        ],
    }
    picking = [
        name for name, sel in edgeserve_selectors.items() if selects(sel, redis_pod_labels())
    ]
    assert not picking, picking


def test_only_edgeserve_pods_may_reach_redis_and_only_on_its_port() -> None:
    policy = named("NetworkPolicy", "edgeserve-redis")["spec"]
    edgeserve_labels = deployment()["spec"]["template"]["metadata"]["labels"]
    assert selects(policy["podSelector"]["matchLabels"], redis_pod_labels()), policy
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}, policy
    assert policy["ingress"], policy
    for rule in policy["ingress"]:
        peers = rule.get("from", [])
        assert peers and all(set(peer) == {"podSelector"} for peer in peers), rule
        assert all(selects(p["podSelector"]["matchLabels"], edgeserve_labels) for p in peers), rule
        assert [p["port"] for p in rule["ports"]] == [6379], rule
    assert not policy.get("egress"), policy


def test_edgeserve_pods_may_connect_to_redis() -> None:
    egress = named("NetworkPolicy", "edgeserve")["spec"]["egress"]
    to_redis = [
        rule
        for rule in egress
        if any(
            selects(peer.get("podSelector", {}).get("matchLabels", {}), redis_pod_labels())
            and "podSelector" in peer
            for peer in rule.get("to", [])
        )
    ]
    assert any(6379 in [p["port"] for p in rule["ports"]] for rule in to_redis), egress
