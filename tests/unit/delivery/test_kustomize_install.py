"""manifests/install renders with kustomize and matches the chart's default install."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
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
