"""manifests/install renders with kustomize and matches the chart's default install."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from delivery_tools import INSTALL, REPO, documents, helm_template, run

HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")


@pytest.fixture(scope="module")
def kustomized(kubectl: Path) -> list[dict[str, Any]]:
    result = run(kubectl, "kustomize", INSTALL)
    assert result.returncode == 0, result.stderr
    return documents(result.stdout)


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    labels = doc["metadata"].get("labels", {})
    for key in HELM_ONLY_LABELS:
        labels.pop(key, None)
    return doc


def key(doc: dict[str, Any]) -> tuple[str, str, str | None]:
    return (doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace"))


def test_same_install_as_the_chart_defaults(
    kustomized: list[dict[str, Any]], helm: Path, tmp_path: Path
) -> None:
    chart = {key(d): comparable(d) for d in documents(helm_template(helm, {}, tmp_path))}
    plain = {
        key(d): comparable(d)
        for d in kustomized
        if d["kind"] not in ("Namespace", "CustomResourceDefinition")
    }
    assert sorted(plain) == sorted(chart)
    for name, doc in plain.items():
        assert doc == chart[name], name


def test_namespace_and_cluster_scope(kustomized: list[dict[str, Any]]) -> None:
    cluster_scoped = {
        "Namespace",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "ClusterKopfPeering",
    }
    for doc in kustomized:
        namespace = doc["metadata"].get("namespace")
        if doc["kind"] in cluster_scoped:
            assert namespace is None, key(doc)
        else:
            assert namespace == "flagops-system", key(doc)


def test_includes_every_generated_crd(kustomized: list[dict[str, Any]]) -> None:
    generated = set()
    for path in (REPO / "crds").glob("*.yaml"):
        if path.name != "kustomization.yaml":
            generated |= {d["metadata"]["name"] for d in documents(path.read_text())}
    included = {
        d["metadata"]["name"] for d in kustomized if d["kind"] == "CustomResourceDefinition"
    }
    assert generated
    assert included == generated


RELAY = INSTALL / "relay"


def test_relay_add_on_is_the_charts_relay(kubectl: Path, helm: Path, tmp_path: Path) -> None:
    result = run(kubectl, "kustomize", RELAY)
    assert result.returncode == 0, result.stderr
    relay = {key(d): comparable(d) for d in documents(result.stdout)}
    plain = {key(d) for d in documents(helm_template(helm, {}, tmp_path))}
    with_relay = documents(helm_template(helm, {"relay": {"enabled": True}}, tmp_path))
    chart = {key(d): comparable(d) for d in with_relay if key(d) not in plain}
    assert sorted(relay) == sorted(chart)
    for name, doc in relay.items():
        assert doc == chart[name], name
    kinds = {k for k, _, _ in relay}
    assert kinds >= {
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Service",
        "NetworkPolicy",
        "PodDisruptionBudget",
    }
    deployment = relay[("Deployment", "flagops-relay", "flagops-system")]
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    role = relay[("ClusterRole", "flagops-relay", None)]
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}
    ]
    # The tokens Secret is the platform team's to create: the add-on never ships one.
    assert "Secret" not in kinds


def test_relay_tokens_example_holds_no_usable_token() -> None:
    from flagops.relay.tokens import TokenTable

    example = documents((RELAY / "tokens-secret.example.yaml").read_text())
    assert [d["kind"] for d in example] == ["Secret"]
    secret = example[0]
    assert secret["metadata"]["name"] == "flagops-relay-tokens"
    text = secret["stringData"]["tokens.yaml"]
    table = TokenTable.parse(text)
    assert len(table) == 2
    entries = yaml.safe_load(text)["tokens"]
    assert all("token" not in e for e in entries)  # digests only, never a token
    assert {e["sha256"] for e in entries} == {"0" * 64, "1" * 64}
    names = (RELAY / "kustomization.yaml").read_text()
    assert "tokens-secret.example.yaml" not in yaml.safe_load(names)["resources"]
