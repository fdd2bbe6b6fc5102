"""Valid objects are accepted, defaults are applied by the apiserver, and the status the
models write round-trips through the status subresource."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flagops.api.common import ConditionStatus, set_condition
from flagops.api.featureflag import EffectiveFlag, FeatureFlagSpec, FeatureFlagStatus
from flagops.api.resources import FEATUREFLAGS, ROLLOUTS, Resource
from flagops.api.rollout import (
    HEALTH_HISTORY_LIMIT,
    ActionRecord,
    ActionResult,
    AnalysisRecord,
    HealthRecord,
    HealthSource,
    Phase,
    ProbeRecord,
    ProbeResult,
    RolloutCondition,
    RolloutSpec,
    RolloutStatus,
    Verdict,
)
from flagops.api.stages import Stage
from flagops_devtools.testing.controlplane import ControlPlane

pytestmark = pytest.mark.integration

NOW = datetime(2024, 12, 18, 8, 0, 0, 123456, tzinfo=UTC)
FLAGS_DIR = Path(__file__).resolve().parents[3] / "manifests" / "flags"


def _create(api: Any, resource: Resource, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = api.create_namespaced_custom_object(
        resource.group,
        resource.version,
        namespace,
        resource.plural,
        body,
        field_validation="Strict",
    )
    return created


def _patch_status(
    api: Any, resource: Resource, namespace: str, name: str, status: dict[str, Any]
) -> dict[str, Any]:
    patched: dict[str, Any] = api.patch_namespaced_custom_object_status(
        resource.group, resource.version, namespace, resource.plural, name, {"status": status}
    )
    return patched


def _obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flagops.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }


def test_minimal_featureflag_gets_defaults(custom_objects: Any, api_namespace: str) -> None:
    created = _create(custom_objects, FEATUREFLAGS, api_namespace, _obj("FeatureFlag", "min", {}))
    assert created["spec"] == {
        "enabled": False,
        "rolloutPercent": 0,
        "allowedCohorts": [],
        "metadata": {},
    }
    assert created["spec"] == FeatureFlagSpec().to_api()


def test_full_featureflag_is_accepted_as_written(custom_objects: Any, api_namespace: str) -> None:
    spec = {
        "key": "calendar_sync.v2-beta",
        "enabled": True,
        "rolloutPercent": 100,
        "allowedCohorts": ["beta", "all"],
        "startDate": "2024-12-01T12:00:00Z",
        # 14:00+02:00 is 12:00:01Z: later than startDate by a second, CEL compares instants
        "endDate": "2024-12-01T14:00:01+02:00",
        "metadata": {"description": "d", "owner": "o", "version": "2"},
        "integration": "calendar_sync",
        "sharedWith": ["meal-plan", "nutrition-2"],
    }
    created = _create(
        custom_objects, FEATUREFLAGS, api_namespace, _obj("FeatureFlag", "full", spec)
    )
    assert created["spec"] == spec
    parsed = FeatureFlagSpec.model_validate(created["spec"])
    assert parsed.end_date - parsed.start_date == timedelta(seconds=1)  # type: ignore[operator]


def test_minimal_rollout_gets_every_default(custom_objects: Any, api_namespace: str) -> None:
    created = _create(
        custom_objects, ROLLOUTS, api_namespace, _obj("Rollout", "min", {"flagRef": {"name": "f"}})
    )
    assert created["spec"] == {
        "flagRef": {"name": "f"},
        "targetStage": "FULL",
        "paused": False,
        "autoAdvance": True,
        "stageDuration": "10m",
        "internalCohorts": ["internal"],
        "analysis": {
            "interval": "60s",
            "errorThreshold": 0.05,
            "minSampleSize": 100,
            "failureLimit": 1,
            "consecutiveErrorLimit": 4,
            "pauseOnError": True,
            "rollbackOnError": False,
            "prometheus": {},
        },
    }
    # The apiserver's defaults and the model's defaults are the same contract.
    assert created["spec"] == RolloutSpec.model_validate({"flagRef": {"name": "f"}}).to_api()


def test_rollout_probe_defaults_and_partial_analysis(
    custom_objects: Any, api_namespace: str
) -> None:
    spec = {
        "flagRef": {"name": "f"},
        "targetStage": "DISABLED",
        "stageDuration": "0s",
        "analysis": {
            "errorThreshold": 1,
            "minSampleSize": 0,
            "prometheus": {"address": "http://p:9090"},
        },
        "healthProbe": {"secretRef": {"name": "creds"}},
    }
    created = _create(custom_objects, ROLLOUTS, api_namespace, _obj("Rollout", "probe", spec))
    assert created["spec"]["healthProbe"] == {
        "secretRef": {"name": "creds"},
        "timeout": "60s",
        "every": "5m",
    }
    analysis = created["spec"]["analysis"]
    assert analysis["errorThreshold"] == 1 and analysis["interval"] == "60s"
    assert analysis["prometheus"] == {"address": "http://p:9090"}
    assert RolloutSpec.model_validate(created["spec"]).to_api() == created["spec"]


def test_flagref_is_immutable(custom_objects: Any, api_namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException

    _create(
        custom_objects,
        ROLLOUTS,
        api_namespace,
        _obj("Rollout", "fixed", {"flagRef": {"name": "a"}}),
    )
    with pytest.raises(ApiException) as rejected:
        custom_objects.patch_namespaced_custom_object(
            ROLLOUTS.group,
            ROLLOUTS.version,
            api_namespace,
            ROLLOUTS.plural,
            "fixed",
            {"spec": {"flagRef": {"name": "b"}, "paused": True}},
        )
    message = json.loads(rejected.value.body or "{}")["message"]
    assert "spec.flagRef" in message and "immutable" in message
    # Other fields stay editable.
    patched = custom_objects.patch_namespaced_custom_object(
        ROLLOUTS.group,
        ROLLOUTS.version,
        api_namespace,
        ROLLOUTS.plural,
        "fixed",
        {"spec": {"paused": True}},
    )
    assert patched["spec"]["paused"] is True


def _full_rollout_status() -> RolloutStatus:
    history = [
        HealthRecord(
            time=NOW - timedelta(minutes=i),
            source=HealthSource.ANALYSIS,
            verdict=Verdict.PASS,
            stage=Stage.BETA,
            error_rate=0.01,
            samples=1234.5,
        )
        for i in range(HEALTH_HISTORY_LIMIT)
    ]
    conditions = set_condition(
        [], RolloutCondition.VALIDATED, ConditionStatus.TRUE, "Valid", "ok", NOW, 1
    )
    conditions = set_condition(
        conditions, RolloutCondition.HEALTHY, ConditionStatus.TRUE, "Pass", "", NOW, 1
    )
    conditions = set_condition(
        conditions, RolloutCondition.PROGRESSING, ConditionStatus.TRUE, "Baking", "", NOW, 1
    )
    return RolloutStatus(
        stage=Stage.BETA,
        phase=Phase.PROGRESSING,
        message="47 of 100 samples",
        stage_started_at=NOW,
        current_percent=10,
        consecutive_failures=0,
        consecutive_errors=2,
        last_analysis=AnalysisRecord(
            time=NOW, error_rate=0.0125, samples=47.0, verdict=Verdict.INCONCLUSIVE
        ),
        last_probe=ProbeRecord(
            job="flr-probe-1", time=NOW, result=ProbeResult.SUCCEEDED, message="ok"
        ),
        health_history=history,
        last_action=ActionRecord(
            name="advance", id="42", at=NOW, result=ActionResult.REJECTED, reason="r"
        ),
        conditions=conditions,
        observed_generation=1,
        pause_reason=None,
        probe_sequence=1,
        active_probe_job="flr-probe-2",
        active_probe_started_at=NOW,
        adopted_at=NOW - timedelta(hours=1),
        rolled_back_generation=None,
    )


def test_rollout_status_round_trips(
    custom_objects: Any, api_namespace: str, flagops_crds: ControlPlane
) -> None:
    _create(
        custom_objects,
        ROLLOUTS,
        api_namespace,
        _obj("Rollout", "status", {"flagRef": {"name": "f"}}),
    )
    status = _full_rollout_status()
    written = {**status.to_api(), "kopf": {"progress": {"h": {"retries": 1}}}}
    patched = _patch_status(custom_objects, ROLLOUTS, api_namespace, "status", written)
    assert patched["status"] == written  # nothing pruned, kopf's subtree kept
    assert RolloutStatus.model_validate(patched["status"]) == status

    table = flagops_crds.kubectl("get", "flr", "status", "-n", api_namespace, "-o", "wide").stdout
    header, row = table.splitlines()
    assert header.split()[:7] == ["NAME", "FLAG", "STAGE", "PERCENT", "PHASE", "ERROR-RATE", "AGE"]
    assert row.split()[:6] == ["status", "f", "BETA", "10", "Progressing", "0.0125"]


def test_rollout_status_limits_are_enforced(custom_objects: Any, api_namespace: str) -> None:
    from kubernetes.client.exceptions import ApiException

    _create(
        custom_objects,
        ROLLOUTS,
        api_namespace,
        _obj("Rollout", "limits", {"flagRef": {"name": "f"}}),
    )
    status = _full_rollout_status().to_api()
    history = status["healthHistory"]
    assert isinstance(history, list)
    status["healthHistory"] = history + history[:1]
    with pytest.raises(ApiException) as rejected:
        _patch_status(custom_objects, ROLLOUTS, api_namespace, "limits", status)
    assert "status.healthHistory" in json.loads(rejected.value.body or "{}")["message"]


def test_featureflag_status_round_trips(
    custom_objects: Any, api_namespace: str, flagops_crds: ControlPlane
) -> None:
    _create(
        custom_objects, FEATUREFLAGS, api_namespace, _obj("FeatureFlag", "status", {"key": "k_1"})
    )
    status = FeatureFlagStatus(
        observed_generation=1,
        effective=EffectiveFlag(
            key="k_1",
            enabled=True,
            rollout_percent=25,
            allowed_cohorts=["beta"],
            stage=Stage.EARLY_ACCESS,
            start_date=NOW,
            metadata={"owner": "o"},
            source="rollout/calendar",
        ),
        conditions=set_condition([], "Published", ConditionStatus.TRUE, "Published", "", NOW, 1),
        published_revision="0" * 64,
    )
    patched = _patch_status(custom_objects, FEATUREFLAGS, api_namespace, "status", status.to_api())
    assert FeatureFlagStatus.model_validate(patched["status"]) == status

    table = flagops_crds.kubectl("get", "ff", "status", "-n", api_namespace).stdout
    header, row = table.splitlines()
    assert header.split() == ["NAME", "KEY", "ENABLED", "PERCENT", "STAGE", "AGE"]
    assert row.split()[:5] == ["status", "k_1", "true", "25", "EARLY_ACCESS"]


def test_category_lists_both_kinds(flagops_crds: ControlPlane, api_namespace: str) -> None:
    _create_names = flagops_crds.kubectl("get", "flagops", "-n", api_namespace, "-o", "name").stdout
    kinds = {line.split("/")[0] for line in _create_names.split()}
    assert kinds == {"featureflag.flagops.dev", "rollout.flagops.dev"}


def test_default_flags_are_accepted(flagops_crds: ControlPlane, namespace: str) -> None:
    flagops_crds.kubectl(
        "apply", "--server-side", "--validate=strict", "-n", namespace, "-k", str(FLAGS_DIR)
    )
    listed = json.loads(flagops_crds.kubectl("get", "ff", "-n", namespace, "-o", "json").stdout)
    stored = {item["metadata"]["name"]: item["spec"] for item in listed["items"]}
    kustomization = yaml.safe_load((FLAGS_DIR / "kustomization.yaml").read_text())
    assert len(stored) == len(kustomization["resources"]) == 6
    for file_name in kustomization["resources"]:
        manifest = yaml.safe_load((FLAGS_DIR / file_name).read_text())
        spec = stored[manifest["metadata"]["name"]]
        # Written as in the file, nothing pruned, defaults only where the file is silent.
        assert spec == FeatureFlagSpec.model_validate(manifest["spec"]).to_api()
        assert {k: spec[k] for k in manifest["spec"]} == manifest["spec"]


def test_unknown_fields_are_pruned_without_strict_validation(
    custom_objects: Any, api_namespace: str
) -> None:
    # Strict validation (kubectl's default) rejects them (see the corpora); a lax client
    # gets them silently dropped, never stored.
    body = _obj("FeatureFlag", "lax", {"enabled": True, "percent": 10})
    created = custom_objects.create_namespaced_custom_object(
        FEATUREFLAGS.group,
        FEATUREFLAGS.version,
        api_namespace,
        FEATUREFLAGS.plural,
        body,
        field_validation="Ignore",
    )
    assert "percent" not in created["spec"] and created["spec"]["enabled"] is True
