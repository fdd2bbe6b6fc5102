"""The chart's `shards: n`: one Deployment, peering and budget per shard; 1 is today's install."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from delivery_tools import (
    CHART,
    assert_schema_rejects,
    by_kind,
    component,
    documents,
    helm_template,
    run,
)

from flagops.controller.shard import Shard


def render(helm: Path, tmp_path: Path, **values: Any) -> list[dict[str, Any]]:
    tmp_path.mkdir(exist_ok=True)
    return documents(helm_template(helm, values, tmp_path))


def env_of(deployment: dict[str, Any]) -> dict[str, str]:
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_one_shard_renders_todays_objects(helm: Path, tmp_path: Path) -> None:
    assert render(helm, tmp_path / "a") == render(helm, tmp_path / "b", shards=1)
    (deployment,) = by_kind(render(helm, tmp_path / "c"), "Deployment")
    assert deployment["metadata"]["name"] == "flagops"
    assert "FLAGOPS_SHARD" not in env_of(deployment)
    assert "flagops.dev/shard" not in deployment["spec"]["selector"]["matchLabels"]


@pytest.mark.parametrize("count", [2, 3])
def test_a_deployment_per_shard(helm: Path, tmp_path: Path, count: int) -> None:
    docs = render(helm, tmp_path, shards=count, replicaCount=2)
    deployments = by_kind(component(docs, "operator"), "Deployment")
    assert [d["metadata"]["name"] for d in deployments] == [
        f"flagops-shard-{i}" for i in range(count)
    ]
    selectors = []
    for index, deployment in enumerate(deployments):
        assert deployment["spec"]["replicas"] == 2
        env = env_of(deployment)
        # The process's own parser takes what the chart sets.
        assert Shard.parse(env["FLAGOPS_SHARD"]) == Shard(index, count)
        assert env["FLAGOPS_PEERING"] == "flagops"
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector["flagops.dev/shard"] == str(index)
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        selectors.append(selector)
    # No Deployment's selector matches another shard's pods.
    for a in selectors:
        assert [b.items() <= a.items() for b in selectors].count(True) == 1
    # Each shard's peering object is the name its processes derive (controller/shard.py).
    peerings = by_kind(docs, "ClusterKopfPeering")
    assert [p["metadata"]["name"] for p in peerings] == [
        Shard(i, count).peering_name("flagops") for i in range(count)
    ]
    # A budget per shard: one over all pods could let a whole shard go down.
    budgets = by_kind(docs, "PodDisruptionBudget")
    assert [b["spec"]["selector"]["matchLabels"] for b in budgets] == selectors
    # The Service scrapes every shard's pods.
    (service,) = by_kind(component(docs, "operator"), "Service")
    for selector in selectors:
        assert service["spec"]["selector"].items() <= selector.items()


def test_namespaced_shards_have_a_peering_per_shard_and_namespace(
    helm: Path, tmp_path: Path
) -> None:
    docs = render(helm, tmp_path, shards=2, watchNamespaces=["team-a", "team-b"])
    found = sorted(
        (p["metadata"]["name"], p["metadata"]["namespace"]) for p in by_kind(docs, "KopfPeering")
    )
    assert found == [
        ("flagops", "team-a"),
        ("flagops", "team-b"),
        ("flagops-shard-1", "team-a"),
        ("flagops-shard-1", "team-b"),
    ]
    assert not by_kind(docs, "ClusterKopfPeering")


def test_standalone_shards_have_no_peering(helm: Path, tmp_path: Path) -> None:
    docs = render(helm, tmp_path, shards=2, standalone=True, replicaCount=1)
    assert len(by_kind(docs, "Deployment")) == 2
    assert not by_kind(docs, "ClusterKopfPeering") and not by_kind(docs, "PodDisruptionBudget")


@pytest.mark.parametrize("shards", [0, "two", 65])
def test_invalid_shard_counts_fail(helm: Path, tmp_path: Path, shards: Any) -> None:
    assert_schema_rejects(helm, {"shards": shards}, tmp_path)


def test_notes_list_every_shard(helm: Path, tmp_path: Path) -> None:
    # helm template skips NOTES.txt: render a copy of it as an ordinary template.
    chart = tmp_path / "flagops"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "NOTES.txt").rename(chart / "templates" / "notes.txt")
    result = run(
        helm,
        "template",
        "flagops",
        chart,
        "--set",
        "shards=2",
        "--show-only",
        "templates/notes.txt",
        "--debug",
    )
    assert (
        'shard 0/2: deployment/flagops-shard-0, 2 replicas, kopf peering "flagops"' in result.stdout
    )
    assert (
        'shard 1/2: deployment/flagops-shard-1, 2 replicas, kopf peering "flagops-shard-1"'
        in result.stdout
    )
    assert "rollout status deployment/flagops-shard-1" in result.stdout
