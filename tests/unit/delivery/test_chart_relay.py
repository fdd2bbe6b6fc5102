"""The relay in the Helm chart: its own Deployment, identity, RBAC, network and monitoring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from delivery_tools import (
    CHART,
    VALUE_SETS,
    assert_schema_rejects,
    by_kind,
    component,
    documents,
    helm_template,
    one,
)
from test_chart import permissions

from flagops.relay import settings as relay_settings

RELAY_SETS = [name for name, values in VALUE_SETS.items() if values.get("relay", {}).get("enabled")]
CONFIGMAPS_READ_ONLY = {("", "configmaps"): {"get", "list", "watch"}}


@pytest.fixture(scope="module")
def relay_docs(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    return {
        name: component(
            documents(helm_template(helm, VALUE_SETS[name], tmp_path_factory.mktemp(name))),
            "relay",
        )
        for name in RELAY_SETS
    }


def pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(docs, "Deployment")["spec"]["template"]["spec"]
    return spec


def relay_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = pod(docs)["containers"]
    assert container["name"] == "relay"
    result: dict[str, Any] = container
    return result


def relay_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in relay_container(docs)["env"]}


def test_value_sets_cover_the_relay() -> None:
    assert set(RELAY_SETS) == {"relay", "relay-namespaced"}


@pytest.mark.parametrize("name", RELAY_SETS)
def test_restricted_pod_with_the_tokens_secret_mounted(
    relay_docs: dict[str, list[Any]], name: str
) -> None:
    docs = relay_docs[name]
    spec = pod(docs)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    c = relay_container(docs)
    assert c["args"] == ["relay"]
    ctx = c["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["tokens"]["readOnly"] is True
    assert "subPath" not in mounts["tokens"], "a subPath mount never sees a changed Secret"
    volumes = {v["name"]: v for v in spec["volumes"]}
    relay = VALUE_SETS[name]["relay"]
    tokens = relay.get("tokens", {})
    secret = tokens.get("secretName", "flagops-relay-tokens")
    assert volumes["tokens"]["secret"]["secretName"] == secret
    env = relay_env(docs)
    assert env["FLAGOPS_RELAY_TOKENS_FILE"] == (
        f"{mounts['tokens']['mountPath']}/{tokens.get('key', 'tokens.yaml')}"
    )
    assert set(env) <= set(relay_settings._ENV.values()), set(env) - set(
        relay_settings._ENV.values()
    )
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert c[probe]["httpGet"] == {"path": path, "port": "http"}
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8080, "metrics": 8081}
    assert env["FLAGOPS_RELAY_PORT"] == "8080" and env["FLAGOPS_METRICS_PORT"] == "8081"


def test_defaults(relay_docs: dict[str, list[Any]]) -> None:
    docs = relay_docs["relay"]
    deployment = one(docs, "Deployment")
    assert deployment["metadata"]["name"] == "flagops-relay"
    assert deployment["spec"]["replicas"] == 2
    assert relay_container(docs)["image"] == "ghcr.io/flagops/flagops:0.1.0"
    assert relay_env(docs) == {
        "FLAGOPS_CONFIGMAP_NAME": "feature-flags",
        "FLAGOPS_RELAY_PORT": "8080",
        "FLAGOPS_METRICS_PORT": "8081",
        "FLAGOPS_RELAY_TOKENS_FILE": "/etc/flagops-relay/tokens.yaml",
        "FLAGOPS_LOG_FORMAT": "json",
        "FLAGOPS_RELAY_RATE_LIMIT": "1000",
        "FLAGOPS_RELAY_RATE_BURST": "2000",
        "FLAGOPS_RELAY_MAX_STREAMS": "1000",
        "FLAGOPS_RELAY_MAX_BODY_BYTES": "16384",
        "FLAGOPS_RELAY_KEEPALIVE_SECONDS": "15",
    }
    assert permissions(one(docs, "ClusterRole")) == CONFIGMAPS_READ_ONLY
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "flagops-relay", "namespace": "flagops-system"}
    ]
    assert one(docs, "ServiceAccount")["metadata"]["name"] == "flagops-relay"
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
    assert services["flagops-relay"]["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    assert services["flagops-relay-metrics"]["spec"]["ports"][0]["targetPort"] == "metrics"
    monitor = one(docs, "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    labels = services["flagops-relay-metrics"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"


def test_namespaced_and_tuned(relay_docs: dict[str, list[Any]]) -> None:
    docs = relay_docs["relay-namespaced"]
    assert not by_kind(docs, "ClusterRole") and not by_kind(docs, "ClusterRoleBinding")
    roles = by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert permissions(role) == CONFIGMAPS_READ_ONLY
    for binding in by_kind(docs, "RoleBinding"):
        assert binding["subjects"][0]["name"] == "flagops-relay"
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert relay_container(docs)["image"] == "registry.example.com/platform/flagops:1.2.3"
    env = relay_env(docs)
    assert env["FLAGOPS_NAMESPACES"] == "team-a,team-b"
    assert (env["FLAGOPS_RELAY_RATE_LIMIT"], env["FLAGOPS_RELAY_RATE_BURST"]) == ("50", "100")
    assert env["FLAGOPS_RELAY_MAX_STREAMS"] == "20000"
    assert env["FLAGOPS_RELAY_ROOT_PATH"] == "/flags"
    policy = one(docs, "NetworkPolicy")
    relay = VALUE_SETS["relay-namespaced"]["relay"]
    http_rule, metrics_rule = policy["spec"]["ingress"]
    assert http_rule["ports"][0]["port"] == "http"
    assert http_rule["from"] == relay["networkPolicy"]["from"]
    assert metrics_rule["from"] == relay["networkPolicy"]["metricsFrom"]
    assert not by_kind(docs, "ServiceMonitor")


@pytest.mark.parametrize("name", RELAY_SETS)
def test_operator_and_relay_select_only_their_own_pods(
    helm: Path, tmp_path: Path, name: str
) -> None:
    docs = documents(helm_template(helm, VALUE_SETS[name], tmp_path))
    pods = {
        part: one(component(docs, part), "Deployment")["spec"]["template"]["metadata"]["labels"]
        for part in ("operator", "relay")
    }
    for part, other in (("operator", "relay"), ("relay", "operator")):
        mine = component(docs, part)
        selectors = [d["spec"]["selector"] for d in by_kind(mine, "Service")]
        selectors += [d["spec"]["selector"]["matchLabels"] for d in by_kind(mine, "Deployment")]
        selectors += [
            d["spec"]["selector"]["matchLabels"] for d in by_kind(mine, "PodDisruptionBudget")
        ]
        selectors += [
            d["spec"]["podSelector"]["matchLabels"] for d in by_kind(mine, "NetworkPolicy")
        ]
        assert selectors
        for selector in selectors:
            assert selector.items() <= pods[part].items(), (part, selector)
            assert not selector.items() <= pods[other].items(), (part, selector)


@pytest.mark.parametrize(
    "values",
    [
        {"relay": {"enabled": "yes"}},
        {"relay": {"enabled": True, "port": 0}},
        {"relay": {"enabled": True, "namespaces": ["Team_A"]}},
        {"relay": {"enabled": True, "tokens": {"key": "../escape"}}},
        {"relay": {"enabled": True, "rateLimit": {"requestsPerSecond": 0}}},
        {"relay": {"enabled": True, "rootPath": "flags/"}},
        {"relay": {"enabled": True, "tokenz": {}}},
    ],
    ids=lambda v: ",".join(k for k in v["relay"] if k != "enabled") or "enabled",
)
def test_invalid_relay_values_fail(helm: Path, tmp_path: Path, values: dict[str, Any]) -> None:
    assert_schema_rejects(helm, values, tmp_path)


def test_relay_alerts_join_the_prometheus_rule_only_with_the_relay(
    helm: Path, tmp_path: Path
) -> None:
    operator_alerts = yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())["groups"]
    relay_alerts = yaml.safe_load((CHART / "files" / "relay-alerts.yaml").read_text())["groups"]
    monitoring = {"prometheusRule": {"enabled": True}}
    without = documents(helm_template(helm, monitoring, tmp_path))
    rule = next(d for d in without if d["kind"] == "PrometheusRule")
    assert rule["spec"]["groups"] == operator_alerts
    with_relay = documents(
        helm_template(helm, {**monitoring, "relay": {"enabled": True}}, tmp_path)
    )
    rule = next(d for d in with_relay if d["kind"] == "PrometheusRule")
    assert rule["spec"]["groups"] == operator_alerts + relay_alerts
