from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from flagops.api.common import Condition, ConditionStatus, get_condition, set_condition
from flagops.api.featureflag import (
    EffectiveFlag,
    FeatureFlag,
    FeatureFlagSpec,
    FeatureFlagStatus,
    effective_key,
    rollout_source,
    source_rollout,
)
from flagops.api.rollout import (
    HEALTH_HISTORY_LIMIT,
    HealthRecord,
    HealthSource,
    Phase,
    Rollout,
    RolloutSpec,
    RolloutStatus,
    Verdict,
)
from flagops.api.stages import Stage

NOW = datetime(2024, 12, 18, 8, 0, tzinfo=UTC)


def test_featureflag_defaults() -> None:
    spec = FeatureFlagSpec.model_validate({})
    assert spec.key is None
    assert spec.enabled is False
    assert spec.rollout_percent == 0
    assert spec.allowed_cohorts == []
    assert spec.metadata == {}
    assert spec.start_date is None and spec.end_date is None and spec.integration is None


def test_featureflag_defaults_are_not_shared() -> None:
    first, second = FeatureFlagSpec(), FeatureFlagSpec()
    first.allowed_cohorts.append("beta")
    first.metadata["owner"] = "me"
    assert second.allowed_cohorts == [] and second.metadata == {}


def test_featureflag_aliases_round_trip() -> None:
    api = {
        "key": "calendar_sync",
        "enabled": True,
        "rolloutPercent": 10,
        "allowedCohorts": ["beta", "internal"],
        "startDate": "2024-12-01T00:00:00+01:00",
        "metadata": {"owner": "calendar-team"},
        "integration": "calendar_sync",
    }
    spec = FeatureFlagSpec.model_validate(api)
    assert spec.rollout_percent == 10
    assert spec.start_date == datetime(2024, 11, 30, 23, 0, tzinfo=UTC)
    dumped = spec.model_dump(by_alias=True, exclude_none=True)
    assert dumped["startDate"] == "2024-11-30T23:00:00Z"
    assert dumped["allowedCohorts"] == ["beta", "internal"]
    assert "endDate" not in dumped
    json.dumps(dumped)  # plain dumps are JSON-ready (timestamps are strings)
    assert FeatureFlagSpec(rollout_percent=5).rollout_percent == 5  # by field name too


@pytest.mark.parametrize(
    "bad",
    [
        {"rolloutPercent": 101},
        {"rolloutPercent": -1},
        {"key": "Calendar"},
        {"key": "_x"},
        {"key": "a b"},
        {"key": "a" * 254},
        {"startDate": "2024-01-01T00:00:00"},  # RFC 3339 needs an offset
        {"metadata": {"n": 1}},
        {"allowedCohorts": [""]},
    ],
)
def test_featureflag_rejects(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FeatureFlagSpec.model_validate(bad)


def test_effective_key() -> None:
    assert effective_key("calendar-sync", FeatureFlagSpec(key="calendar_sync")) == "calendar_sync"
    assert effective_key("export-pdf", FeatureFlagSpec()) == "export-pdf"
    flag = FeatureFlag.model_validate(
        {
            "apiVersion": "flagops.dev/v1alpha1",
            "kind": "FeatureFlag",
            "metadata": {"name": "x-y"},
            "spec": {},
        }
    )
    assert flag.key == "x-y" and flag.name == "x-y"


def test_sources() -> None:
    assert rollout_source("calendar") == "rollout/calendar"
    assert source_rollout("rollout/calendar") == "calendar"
    assert source_rollout("spec") is None
    EffectiveFlag(enabled=True, rollout_percent=10, source="rollout/calendar")
    with pytest.raises(ValidationError):
        EffectiveFlag(enabled=True, rollout_percent=10, source="somewhere")


def test_featureflag_status_api_shape() -> None:
    status = FeatureFlagStatus(
        observed_generation=3,
        effective=EffectiveFlag(
            enabled=True,
            rollout_percent=10,
            allowed_cohorts=["beta"],
            stage=Stage.BETA,
            source="rollout/r",
        ),
        conditions=set_condition([], "Published", ConditionStatus.TRUE, "Published", "ok", NOW, 3),
        published_revision="abc",
    )
    api = status.to_api()
    assert api["effective"] == {
        "enabled": True,
        "rolloutPercent": 10,
        "allowedCohorts": ["beta"],
        "stage": "BETA",
        "metadata": {},
        "source": "rollout/r",
    }
    assert api["conditions"] == [
        {
            "type": "Published",
            "status": "True",
            "reason": "Published",
            "message": "ok",
            "lastTransitionTime": "2024-12-18T08:00:00Z",
            "observedGeneration": 3,
        }
    ]
    assert FeatureFlagStatus.model_validate(api) == status


def test_rollout_defaults() -> None:
    spec = RolloutSpec.model_validate({"flagRef": {"name": "calendar-sync"}})
    assert spec.target_stage is Stage.FULL
    assert spec.paused is False and spec.auto_advance is True
    assert spec.stage_duration == "10m" and spec.stage_duration_delta == timedelta(minutes=10)
    assert spec.internal_cohorts == ["internal"]
    analysis = spec.analysis
    assert analysis.interval_delta == timedelta(seconds=60)
    assert analysis.error_threshold == 0.05
    assert analysis.min_sample_size == 100
    assert analysis.failure_limit == 1
    assert analysis.consecutive_error_limit == 4
    assert analysis.pause_on_error is True and analysis.rollback_on_error is False
    assert analysis.prometheus.address is None
    assert spec.health_probe is None


def test_rollout_probe_defaults_and_aliases() -> None:
    spec = RolloutSpec.model_validate(
        {
            "flagRef": {"name": "f"},
            "healthProbe": {"secretRef": {"name": "creds"}},
            "analysis": {"prometheus": {"errorRateQuery": "vector(0)"}},
        }
    )
    assert spec.health_probe is not None
    assert spec.health_probe.secret_ref is not None and spec.health_probe.secret_ref.name == "creds"
    assert spec.health_probe.timeout_delta == timedelta(seconds=60)
    assert spec.health_probe.every_delta == timedelta(minutes=5)
    assert spec.analysis.prometheus.error_rate_query == "vector(0)"
    api = spec.to_api()
    assert api["healthProbe"] == {"secretRef": {"name": "creds"}, "timeout": "60s", "every": "5m"}
    assert api["flagRef"] == {"name": "f"}


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"flagRef": {}},
        {"flagRef": {"name": "f"}, "targetStage": "HALF"},
        {"flagRef": {"name": "f"}, "stageDuration": "10 minutes"},
        {"flagRef": {"name": "f"}, "analysis": {"errorThreshold": 1.5}},
        {"flagRef": {"name": "f"}, "analysis": {"errorThreshold": -0.1}},
        {"flagRef": {"name": "f"}, "analysis": {"failureLimit": 0}},
        {"flagRef": {"name": "f"}, "analysis": {"consecutiveErrorLimit": 0}},
        {"flagRef": {"name": "f"}, "analysis": {"minSampleSize": -1}},
    ],
)
def test_rollout_rejects(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        RolloutSpec.model_validate(bad)


def test_rollout_status_round_trip_and_history_limit() -> None:
    status = RolloutStatus(stage=Stage.BETA, phase=Phase.PROGRESSING, stage_started_at=NOW)
    for i in range(HEALTH_HISTORY_LIMIT + 5):
        record = HealthRecord(
            time=NOW + timedelta(minutes=i), source=HealthSource.ANALYSIS, verdict=Verdict.PASS
        )
        status.health_history = status.with_health(record)
    assert len(status.health_history) == HEALTH_HISTORY_LIMIT
    assert status.health_history[0].time == NOW + timedelta(minutes=HEALTH_HISTORY_LIMIT + 4)
    api = status.to_api()
    assert api["stage"] == "BETA" and api["phase"] == "Progressing"
    assert api["stageStartedAt"] == "2024-12-18T08:00:00Z"
    assert api["consecutiveFailures"] == 0
    assert RolloutStatus.model_validate(api) == status
    history = api["healthHistory"]
    assert isinstance(history, list)
    with pytest.raises(ValidationError):
        RolloutStatus.model_validate({"healthHistory": [history[0]] * 21})


def test_rollout_whole_object_ignores_unknown_fields() -> None:
    rollout = Rollout.model_validate(
        {
            "metadata": {"name": "r"},
            "spec": {"flagRef": {"name": "f"}},
            "status": {"phase": "Paused", "kopf": {"progress": {}}},
        }
    )
    assert rollout.name == "r" and rollout.status.phase is Phase.PAUSED


def test_set_condition_moves_transition_time_only_on_change() -> None:
    later = NOW + timedelta(minutes=5)
    conditions = set_condition([], "Healthy", ConditionStatus.TRUE, "Pass", "", NOW)
    conditions = set_condition(conditions, "Healthy", ConditionStatus.TRUE, "Pass", "again", later)
    healthy = get_condition(conditions, "Healthy")
    assert (
        healthy is not None and healthy.last_transition_time == NOW and healthy.message == "again"
    )
    conditions = set_condition(conditions, "Healthy", ConditionStatus.FALSE, "Fail", "", later)
    conditions = set_condition(conditions, "Validated", ConditionStatus.TRUE, "Ok", "", later)
    assert [c.type for c in conditions] == ["Healthy", "Validated"]
    assert conditions[0].last_transition_time == later
    assert get_condition(conditions, "Progressing") is None
    assert isinstance(conditions[0], Condition)
