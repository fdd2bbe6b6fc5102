"""The Helm chart, rendered with helm itself: lint, value sets, RBAC, security, failures."""

from __future__ import annotations

import json
import shutil
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
    run,
)

from flagops.controller import settings

SECRET_LIKE = {"secrets", "*"}

# The least privilege the operator needs, per (apiGroup, resource): a test fails on any drift.
NAMESPACED_RULES = {
    ("flagops.dev", "featureflags"): {"get", "list", "watch", "patch"},
    ("flagops.dev", "rollouts"): {"get", "list", "watch", "patch"},
    ("flagops.dev", "featureflags/status"): {"get", "patch", "update"},
    ("flagops.dev", "rollouts/status"): {"get", "patch", "update"},
    ("", "configmaps"): {"get", "list", "watch", "create", "update", "patch", "delete"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "delete"},
    ("", "pods"): {"get", "list", "watch"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
CLUSTER_RULES = {
    **NAMESPACED_RULES,
    ("kopf.dev", "clusterkopfpeerings"): {"get", "list", "watch", "patch"},
    ("", "namespaces"): {"get", "list", "watch"},
    ("apiextensions.k8s.io", "customresourcedefinitions"): {"get", "list", "watch"},
}
ROLE_RULES = {**NAMESPACED_RULES, ("kopf.dev", "kopfpeerings"): {"get", "list", "watch", "patch"}}


def permissions(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    result: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        assert not rule.get("resourceNames"), "no rule is limited by name"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                result.setdefault((group, resource), set()).update(rule["verbs"])
    return result


@pytest.fixture(scope="module")
def rendered(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Any]]:
    return {
        name: documents(helm_template(helm, values, tmp_path_factory.mktemp(name)))
        for name, values in VALUE_SETS.items()
    }


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = one(component(docs, "operator"), "Deployment")["spec"]["template"]["spec"]
    assert len(pod["containers"]) == 1
    result: dict[str, Any] = pod["containers"][0]
    return result


def env(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(docs)["env"]}


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_helm_lint_strict(helm: Path, tmp_path: Path, name: str) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(VALUE_SETS[name]))
    result = run(helm, "lint", "--strict", CHART, "-f", values)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_every_rendering_is_least_privilege(rendered: dict[str, list[Any]], name: str) -> None:
    docs = rendered[name]
    roles = by_kind(docs, "ClusterRole") + by_kind(docs, "Role")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], (role["metadata"]["name"], rule)
            assert not SECRET_LIKE & set(rule["resources"]), rule


def test_cluster_mode_rbac(rendered: dict[str, list[Any]]) -> None:
    docs = rendered["default"]
    assert permissions(one(docs, "ClusterRole")) == CLUSTER_RULES
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "flagops", "namespace": "flagops-system"}
    ]
    assert not by_kind(docs, "Role")
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == "flagops"
    assert "FLAGOPS_NAMESPACES" not in env(docs)


def test_namespaced_mode_has_nothing_cluster_wide(rendered: dict[str, list[Any]]) -> None:
    docs = rendered["namespaced"]
    assert not by_kind(docs, "ClusterRole")
    assert not by_kind(docs, "ClusterRoleBinding")
    assert not by_kind(docs, "ClusterKopfPeering")
    roles = by_kind(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["team-a", "team-b"]
    for role in roles:
        assert permissions(role) == ROLE_RULES
    bindings = by_kind(docs, "RoleBinding")
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    for binding in bindings:
        assert binding["subjects"][0]["namespace"] == "flagops-system"
    peerings = by_kind(docs, "KopfPeering")
    assert sorted(p["metadata"]["namespace"] for p in peerings) == ["team-a", "team-b"]
    assert env(docs)["FLAGOPS_NAMESPACES"] == "team-a,team-b"


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_env_names_are_operator_settings(rendered: dict[str, list[Any]], name: str) -> None:
    known = set(settings._ENV.values())
    chart_env = {n for n in env(rendered[name]) if n.startswith("FLAGOPS_")}
    assert chart_env
    assert chart_env <= known, chart_env - known


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_restricted_security_context(rendered: dict[str, list[Any]], name: str) -> None:
    docs = rendered[name]
    pod = one(component(docs, "operator"), "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    ctx = container(docs)["securityContext"]
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["runAsNonRoot"] is True
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["name"]: m["mountPath"] for m in container(docs)["volumeMounts"]}
    assert mounts == {"tmp": "/tmp"}
    assert {v["name"]: v for v in pod["volumes"]}["tmp"]["emptyDir"]


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_probes_and_ports_follow_settings(rendered: dict[str, list[Any]], name: str) -> None:
    values = VALUE_SETS[name]
    docs = rendered[name]
    c = container(docs)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {
        "metrics": values.get("metricsPort", 8080),
        "health": values.get("healthPort", 8081),
    }
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    e = env(docs)
    assert e["FLAGOPS_METRICS_PORT"] == str(ports["metrics"])
    assert e["FLAGOPS_HEALTH_PORT"] == str(ports["health"])
    service = one(component(docs, "operator"), "Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    assert c["args"][0] == "run"
    assert c["resources"]["requests"] and c["resources"]["limits"]


def test_defaults(rendered: dict[str, list[Any]]) -> None:
    docs = rendered["default"]
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert container(docs)["args"] == ["run"]
    assert container(docs)["image"] == "ghcr.io/flagops/flagops:0.1.0"
    assert env(docs) == {
        "FLAGOPS_PROMETHEUS_ADDRESS": "http://prometheus-operated.monitoring.svc:9090",
        "FLAGOPS_PROMETHEUS_TIMEOUT": "5",
        "FLAGOPS_ANALYSIS_GROUPING": "on",
        "FLAGOPS_STATUS_HEARTBEAT": "300",
        "FLAGOPS_APISERVER_UNHEALTHY_AFTER": "300",
        "FLAGOPS_CONFIGMAP_NAME": "feature-flags",
        "FLAGOPS_PROBE_IMAGE": "ghcr.io/flagops/flagops:0.1.0",
        "FLAGOPS_METRICS_PORT": "8080",
        "FLAGOPS_HEALTH_PORT": "8081",
        "FLAGOPS_LOG_FORMAT": "json",
        "FLAGOPS_PEERING": "flagops",
        "FLAGOPS_PEERING_LIFETIME": "60",
    }
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert one(docs, "NetworkPolicy")["spec"]["policyTypes"] == ["Ingress", "Egress"]
    for kind in ("ServiceMonitor", "PrometheusRule", "ConfigMap"):
        assert not by_kind(docs, kind), f"{kind} is off by default"
    assert not component(docs, "relay"), "the relay is off by default (it needs a tokens Secret)"


def test_custom_values(rendered: dict[str, list[Any]]) -> None:
    docs = rendered["custom"]
    deployment = one(docs, "Deployment")
    assert deployment["metadata"]["name"] == "flags-operator"
    assert deployment["spec"]["replicas"] == 1
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "flags-operator-sa"
    assert one(docs, "ServiceAccount")["metadata"]["name"] == "flags-operator-sa"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    assert pod["tolerations"][0]["key"] == "platform"
    c = container(docs)
    assert c["image"] == "registry.example.com/platform/flagops:1.2.3"
    assert c["args"] == ["run", "--standalone"]
    assert c["resources"] == VALUE_SETS["custom"]["resources"]
    e = env(docs)
    assert e["FLAGOPS_PROBE_IMAGE"] == "registry.example.com/platform/flagops-probe:1.2.3"
    assert e["FLAGOPS_PROMETHEUS_ADDRESS"] == "http://thanos-query.observability.svc:9090"
    assert e["FLAGOPS_CONFIGMAP_NAME"] == "flags"
    assert e["FLAGOPS_LOG_FORMAT"] == "text"
    assert e["FLAGOPS_PEERING"] == "flags-peering"
    assert e["FLAGOPS_PEERING_LIFETIME"] == "15"
    assert e["FLAGOPS_PROBE_ENV"] == "FLAGOPS_CALENDAR_ID=meals,FLAGOPS_PROBE_MOCK_MODE=true"
    assert e["TZ"] == "UTC"
    # One standalone replica: no peering object, and no PDB that would block node drains.
    assert not by_kind(docs, "ClusterKopfPeering")
    assert not by_kind(docs, "PodDisruptionBudget")
    binding = one(docs, "ClusterRoleBinding")
    assert binding["subjects"][0]["name"] == "flags-operator-sa"
    metrics_rule = one(docs, "NetworkPolicy")["spec"]["ingress"][0]
    assert metrics_rule["from"] == VALUE_SETS["custom"]["networkPolicy"]["metricsFrom"]


def test_monitoring_objects_come_from_the_shared_files(rendered: dict[str, list[Any]]) -> None:
    docs = rendered["monitoring"]
    rule = one(docs, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "alerts.yaml").read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus"
    dashboard = one(docs, "ConfigMap")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    text = dashboard["data"]["flagops.json"]
    assert json.loads(text) == json.loads((CHART / "files" / "dashboard.json").read_text())
    monitor = one(docs, "ServiceMonitor")
    service = one(docs, "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    # job="flagops", which the alerts select on, whatever the release is called.
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "flagops"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert monitor["spec"]["endpoints"][0]["honorLabels"] is True


@pytest.mark.parametrize(
    "values",
    [
        {"replicaCount": "two"},
        {"logFormat": "xml"},
        {"watchNamespaces": "team-a"},
        {"watchNamespaces": ["Team_A"]},
        {"metricsPort": 70000},
        {"prometheus": {"address": "prometheus:9090"}},
        {"standalone": "yes"},
        {"analysisGrouping": True},
        {"statusHeartbeat": -1},
    ],
    ids=lambda v: next(iter(v)),
)
def test_invalid_values_fail(helm: Path, tmp_path: Path, values: dict[str, Any]) -> None:
    assert_schema_rejects(helm, values, tmp_path)


def test_a_broken_template_fails(helm: Path, tmp_path: Path) -> None:
    chart = tmp_path / "flagops"
    shutil.copytree(CHART, chart)
    deployment = chart / "templates" / "deployment.yaml"
    deployment.write_text(
        deployment.read_text().replace(
            "{{ $.Values.replicaCount }}", "{{ $.Values.replicas.count }}"
        )
    )
    result = run(helm, "template", "flagops", chart)
    assert result.returncode != 0
    assert "nil pointer" in result.stderr
    with pytest.raises(AssertionError, match="helm template failed"):
        helm_template(helm, {}, tmp_path, chart=chart)
