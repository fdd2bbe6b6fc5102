"""The generated schemas are structural and carry the contract of DESIGN.md."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from flagops.api import crdgen
from flagops.api.stages import Stage

FORBIDDEN = {"$ref", "anyOf", "oneOf", "allOf", "title", "$defs", "const", "exclusiveMinimum"}


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        found.append((path, node))
        for name, sub in node.get("properties", {}).items():
            found.extend(_walk(sub, f"{path}.{name}"))
        if "items" in node:
            found.extend(_walk(node["items"], f"{path}[]"))
        if isinstance(node.get("additionalProperties"), dict):
            found.extend(_walk(node["additionalProperties"], f"{path}{{}}"))
    return found


def _schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def _at(schema: dict[str, Any], dotted: str) -> dict[str, Any]:
    node = schema
    for part in dotted.split("."):
        node = node["properties"][part]
    return node


@pytest.mark.parametrize("crd", [crdgen.featureflag_crd(), crdgen.rollout_crd()])
def test_schema_is_structural(crd: dict[str, Any]) -> None:
    for path, node in _walk(_schema(crd)):
        assert not FORBIDDEN & node.keys(), (path, FORBIDDEN & node.keys())
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        assert node.get("default", 0) is not None, path


@pytest.mark.parametrize("crd", [crdgen.featureflag_crd(), crdgen.rollout_crd()])
def test_preserve_unknown_fields_only_for_kopf(crd: dict[str, Any]) -> None:
    free = [p for p, n in _walk(_schema(crd)) if n.get("x-kubernetes-preserve-unknown-fields")]
    assert free == [".status.kopf"]


def test_featureflag_crd_names_and_columns() -> None:
    crd = crdgen.featureflag_crd()
    assert crd["metadata"]["name"] == "featureflags.flagops.dev"
    names = crd["spec"]["names"]
    assert names["shortNames"] == ["ff"]
    assert names["categories"] == ["flagops"]
    version = crd["spec"]["versions"][0]
    assert version["name"] == "v1alpha1"
    assert version["subresources"] == {"status": {}}
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
    assert columns[:5] == [
        ("KEY", ".status.effective.key"),
        ("ENABLED", ".status.effective.enabled"),
        ("PERCENT", ".status.effective.rolloutPercent"),
        ("STAGE", ".status.effective.stage"),
        ("AGE", ".metadata.creationTimestamp"),
    ]


def test_rollout_crd_names_and_columns() -> None:
    crd = crdgen.rollout_crd()
    assert crd["spec"]["names"]["shortNames"] == ["flr"]
    version = crd["spec"]["versions"][0]
    columns = [(c["name"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
    assert columns[:6] == [
        ("FLAG", ".spec.flagRef.name"),
        ("STAGE", ".status.stage"),
        ("PERCENT", ".status.currentPercent"),
        ("PHASE", ".status.phase"),
        ("ERROR-RATE", ".status.lastAnalysis.errorRate"),
        ("AGE", ".metadata.creationTimestamp"),
    ]


def test_featureflag_defaults_ranges_and_rules() -> None:
    spec = _at(_schema(crdgen.featureflag_crd()), "spec")
    assert _at(spec, "enabled")["default"] is False
    percent = _at(spec, "rolloutPercent")
    assert (percent["default"], percent["minimum"], percent["maximum"]) == (0, 0, 100)
    assert _at(spec, "startDate")["format"] == "date-time"
    metadata = _at(spec, "metadata")
    assert metadata["additionalProperties"] == {"type": "string", "maxLength": 1024}
    assert metadata["maxProperties"] == 16
    assert [r["rule"] for r in metadata["x-kubernetes-validations"]] == [
        "self.all(k, size(k) >= 1 && size(k) <= 63)",
        "self.map(k, size(k) + size(self[k])).sum() <= 4096",
    ]
    assert "default" not in _at(spec, "key")
    rules = [r["rule"] for r in spec["x-kubernetes-validations"]]
    assert any("endDate" in r and "startDate" in r for r in rules)
    assert "matches" in _at(spec, "key")["x-kubernetes-validations"][0]["rule"]


def test_rollout_defaults_ranges_and_enums() -> None:
    spec = _at(_schema(crdgen.rollout_crd()), "spec")
    assert spec["required"] == ["flagRef"]
    assert _at(spec, "targetStage")["enum"] == [s.value for s in Stage]
    assert _at(spec, "targetStage")["default"] == "FULL"
    assert _at(spec, "stageDuration")["default"] == "10m"
    assert _at(spec, "internalCohorts")["default"] == ["internal"]
    analysis = _at(spec, "analysis")
    assert analysis["default"] == {}
    assert _at(analysis, "interval")["default"] == "60s"
    threshold = _at(analysis, "errorThreshold")
    assert (threshold["default"], threshold["minimum"], threshold["maximum"]) == (0.05, 0, 1)
    assert _at(analysis, "failureLimit")["minimum"] == 1
    assert _at(analysis, "consecutiveErrorLimit")["default"] == 4
    probe = _at(spec, "healthProbe")
    assert "default" not in probe
    assert _at(probe, "timeout")["default"] == "60s"
    assert _at(probe, "every")["default"] == "5m"


def test_status_schema_has_no_defaults() -> None:
    for crd in (crdgen.featureflag_crd(), crdgen.rollout_crd()):
        status = _at(_schema(crd), "status")
        assert all("default" not in node for _, node in _walk(status))


def test_rollout_status_fields_of_design() -> None:
    status = _at(_schema(crdgen.rollout_crd()), "status")["properties"]
    for field in [
        "stage",
        "phase",
        "message",
        "stageStartedAt",
        "currentPercent",
        "consecutiveFailures",
        "consecutiveErrors",
        "lastAnalysis",
        "lastProbe",
        "healthHistory",
        "lastAction",
        "conditions",
        "observedGeneration",
    ]:
        assert field in status, field
    assert status["healthHistory"]["maxItems"] == 20
    assert set(status["lastAnalysis"]["properties"]) >= {"time", "errorRate", "samples", "verdict"}
    assert set(status["lastProbe"]["properties"]) >= {"job", "time", "result", "message"}
    assert set(status["lastAction"]["properties"]) >= {"name", "id", "at", "result"}
    assert status["phase"]["enum"] == [
        "Pending",
        "Progressing",
        "Paused",
        "Completed",
        "RolledBack",
        "Degraded",
    ]


def test_kopf_peering_crds() -> None:
    crds = crdgen.kopf_peering_crds()
    assert [(c["metadata"]["name"], c["spec"]["scope"]) for c in crds] == [
        ("clusterkopfpeerings.kopf.dev", "Cluster"),
        ("kopfpeerings.kopf.dev", "Namespaced"),
    ]


def test_rendered_yaml_parses_back_to_the_same_objects() -> None:
    rendered = crdgen.render()
    docs = list(yaml.safe_load_all(rendered["flagops.dev_rollouts.yaml"]))
    assert docs == [crdgen.rollout_crd()]


def test_unions_are_refused() -> None:
    class Bad(BaseModel):
        value: int | str

    with pytest.raises(crdgen.SchemaError, match="unions"):
        crdgen.model_schema(Bad)


def test_cli_prints_all_crds(capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main([]) == 0
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(capsys.readouterr().out)]
    assert names == [
        "featureflags.flagops.dev",
        "rollouts.flagops.dev",
        "clusterkopfpeerings.kopf.dev",
        "kopfpeerings.kopf.dev",
    ]
