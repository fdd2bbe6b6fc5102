"""The Argo CD Application example points at real paths with values the chart accepts."""

from __future__ import annotations

from pathlib import Path

from delivery_tools import REPO, documents, helm_template

APPLICATIONS = REPO / "manifests" / "argocd" / "application.yaml"


def test_sources_exist_and_chart_values_render(helm: Path, tmp_path: Path) -> None:
    apps = documents(APPLICATIONS.read_text())
    assert {a["kind"] for a in apps} == {"Application"}
    for app in apps:
        source = app["spec"]["source"]
        assert (REPO / source["path"]).is_dir(), source["path"]
        helm_source = source.get("helm")
        if helm_source:
            assert source["path"] == "charts/flagops"
            docs = documents(
                helm_template(
                    helm,
                    helm_source["valuesObject"],
                    tmp_path,
                    namespace=app["spec"]["destination"]["namespace"],
                    release=helm_source["releaseName"],
                )
            )
            kinds = {d["kind"] for d in docs}
            assert {"ServiceMonitor", "PrometheusRule", "ConfigMap"} <= kinds
