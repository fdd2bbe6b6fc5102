"""Tools the delivery tests share: finding helm/promtool/kubectl, rendering the chart."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "flagops"
INSTALL = REPO / "manifests" / "install"
HELM_VERSION = "v3.19.0"

# The value sets every rendering test runs over (besides the defaults).
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus"}},
        "dashboard": {"enabled": True},
    },
    # The relay beside the operator: cluster mode with monitoring, then namespaced and tuned.
    "relay": {
        "relay": {"enabled": True},
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}},
    },
    "relay-namespaced": {
        "watchNamespaces": ["team-a", "team-b"],
        "relay": {
            "enabled": True,
            "replicaCount": 3,
            "image": {"repository": "registry.example.com/platform/flagops", "tag": "1.2.3"},
            "tokens": {"secretName": "relay-tokens", "key": "tokens.json"},
            "rateLimit": {"requestsPerSecond": 50, "burst": 100},
            "maxStreams": 20000,
            "rootPath": "/flags",
            "networkPolicy": {
                "from": [{"namespaceSelector": {"matchLabels": {"apps": "true"}}}],
                "metricsFrom": [{"namespaceSelector": {"matchLabels": {"mon": "true"}}}],
            },
        },
    },
    "custom": {
        "fullnameOverride": "flags-operator",
        "replicaCount": 1,
        "standalone": True,
        "image": {"repository": "registry.example.com/platform/flagops", "tag": "1.2.3"},
        "probeImage": "registry.example.com/platform/flagops-probe:1.2.3",
        "prometheus": {"address": "http://thanos-query.observability.svc:9090"},
        "configMapName": "flags",
        "logFormat": "text",
        "peering": "flags-peering",
        "peeringLifetime": 15,
        "probeEnv": {"FLAGOPS_PROBE_MOCK_MODE": "true", "FLAGOPS_CALENDAR_ID": "meals"},
        "metricsPort": 9100,
        "healthPort": 9101,
        "serviceAccount": {"name": "flags-operator-sa"},
        "resources": {
            "requests": {"cpu": "100m", "memory": "200Mi"},
            "limits": {"cpu": "1", "memory": "400Mi"},
        },
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "platform", "operator": "Exists", "effect": "NoSchedule"}],
        "networkPolicy": {
            "metricsFrom": [
                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}}
            ]
        },
    },
}


class ToolNotFound(RuntimeError):
    pass


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("FLAGOPS_CACHE") or Path(base) / "flagops")


def find_helm() -> Path:
    """helm on PATH, else the one hack/kube-binaries.sh --with-helm builds into the cache."""
    on_path = shutil.which("helm")
    if on_path:
        return Path(on_path)
    cached = cache_dir() / "bin" / f"helm-{HELM_VERSION}" / "helm"
    if not os.access(cached, os.X_OK):
        # Builds helm once through the Go module proxy (a no-op when it is cached).
        subprocess.run(
            [str(REPO / "hack" / "kube-binaries.sh"), "--with-helm"],
            check=True,
            capture_output=True,
            timeout=3600,
        )
    if not os.access(cached, os.X_OK):
        raise ToolNotFound(f"no helm on PATH and none at {cached}")
    return cached


def find_tool(name: str, hint: str) -> Path:
    found = shutil.which(name)
    if not found:
        raise ToolNotFound(f"{name} not found on PATH: {hint}")
    return Path(found)


def run(*args: str | Path, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], input=input, capture_output=True, text=True, timeout=300
    )


def helm_template(
    helm: Path,
    values: dict[str, Any],
    tmp_path: Path,
    namespace: str = "flagops-system",
    release: str = "flagops",
    chart: Path = CHART,
) -> str:
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = run(helm, "template", release, chart, "--namespace", namespace, "-f", values_file)
    if result.returncode != 0:
        raise AssertionError(f"helm template failed:\n{result.stderr}")
    return result.stdout


def assert_schema_rejects(helm: Path, values: dict[str, Any], tmp_path: Path) -> None:
    """`helm template` refuses `values` because values.schema.json does."""
    values_file = tmp_path / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    result = run(helm, "template", "flagops", CHART, "-f", values_file)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr


def documents(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def component(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The documents of one component: `operator` or `relay` (by app.kubernetes.io/component)."""
    return [
        d
        for d in docs
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component", "operator") == name
    ]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]
