"""The Rollout resource (shortName `flr`): how a flag moves through the stages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from flagops.api.common import (
    ApiModel,
    ApiObject,
    Cohort,
    Condition,
    Timestamp,
    read_metadata,
    read_part,
    unique_items,
)
from flagops.api.durations import Duration, format_duration, parse_duration
from flagops.api.stages import Stage

HEALTH_HISTORY_LIMIT = 20
# Events not yet confirmed posted; more only when the Event API refuses for long.
PENDING_EVENTS_LIMIT = 20


class Phase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    ROLLED_BACK = "RolledBack"
    DEGRADED = "Degraded"


class Verdict(StrEnum):
    PASS = "Pass"  # noqa: S105 - a verdict, not a password
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class ProbeResult(StrEnum):
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class HealthSource(StrEnum):
    ANALYSIS = "Analysis"
    PROBE = "Probe"


class ActionResult(StrEnum):
    SUCCEEDED = "Succeeded"
    REJECTED = "Rejected"
    FAILED = "Failed"


class RolloutCondition(StrEnum):
    VALIDATED = "Validated"
    HEALTHY = "Healthy"
    PROGRESSING = "Progressing"


class PauseReason(StrEnum):
    """Conventional values of status.pauseReason (also used as condition reasons)."""

    SPEC = "SpecPaused"
    MANUAL = "Manual"
    ANALYSIS_FAILED = "AnalysisFailed"
    PROMETHEUS_UNAVAILABLE = "PrometheusUnavailable"


_ONE_SECOND = timedelta(seconds=1)


def at_least(value: str, minimum: timedelta, field: str) -> str:
    """Mirrors the CRD's CEL `duration(self) >= duration(...)` rules for Python callers."""
    if parse_duration(value) < minimum:
        raise ValueError(f"{field} must be at least {format_duration(minimum)}")
    return value


def _min_duration_rule(minimum: str, message: str) -> dict[str, Any]:
    return {
        "x-kubernetes-validations": [
            {"rule": f"duration(self) >= duration('{minimum}')", "message": message}
        ]
    }


# --- spec -----------------------------------------------------------------


class FlagRef(ApiModel):
    """The FeatureFlag this Rollout controls, in the same namespace."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "self.name == oldSelf.name",
                    "message": "flagRef.name is immutable; create a new Rollout for another flag",
                }
            ]
        }
    )

    name: str = Field(min_length=1, max_length=253, description="FeatureFlag object name.")


ADDRESS_MAX_LENGTH = 2048
ADDRESS_MESSAGE = "address must be an http or https URL with a host, e.g. http://prometheus:9090"


def http_url(value: str) -> str:
    """`value` when it is an http(s) URL with a host (the CRD's CEL rule), else ValueError."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        raise ValueError(ADDRESS_MESSAGE) from None
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in value):
        raise ValueError(ADDRESS_MESSAGE)
    return value


class PrometheusSpec(ApiModel):
    """Where and what to ask Prometheus. Unset fields use the operator's settings."""

    address: str | None = Field(
        default=None,
        min_length=1,
        max_length=ADDRESS_MAX_LENGTH,
        description="Prometheus base URL (http or https); defaults to the operator's"
        " --prometheus-address.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "isURL(self) && url(self).getScheme() in ['http', 'https']"
                    " && url(self).getHostname() != ''",
                    "message": ADDRESS_MESSAGE,
                }
            ]
        },
    )
    error_rate_query: str | None = Field(
        default=None,
        min_length=1,
        description="PromQL template for the error rate; defaults to one built from the"
        " flag's integration. Placeholders: {{integration}}, {{flag}}, {{namespace}},"
        " {{stage}}, {{window}}.",
    )
    sample_count_query: str | None = Field(
        default=None,
        min_length=1,
        description="PromQL template for the number of operations in the window.",
    )

    @field_validator("address")
    @classmethod
    def _http_address(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)


class AnalysisSpec(ApiModel):
    """How the operator judges a stage."""

    interval: Duration = Field(
        default="60s",
        description="Time between analyses (Go-style duration, at least 1s).",
        json_schema_extra=_min_duration_rule("1s", "interval must be at least 1s"),
    )
    error_threshold: float = Field(
        strict=True,
        default=0.05,
        ge=0,
        le=1,
        description="Highest error rate (0..1) that still passes.",
    )
    min_sample_size: int = Field(
        strict=True,
        default=100,
        ge=0,
        description="Operations needed in the stage's window before a verdict counts.",
    )
    failure_limit: int = Field(
        strict=True,
        default=1,
        ge=1,
        description="Consecutive Fail verdicts before pausing or rolling back.",
    )
    consecutive_error_limit: int = Field(
        strict=True,
        default=4,
        ge=1,
        description="Consecutive Error verdicts (Prometheus unreachable) before pausing.",
    )
    pause_on_error: bool = Field(
        strict=True, default=True, description="Pause when the failure limit is hit."
    )
    rollback_on_error: bool = Field(
        strict=True, default=False, description="Roll back to DISABLED instead of pausing."
    )
    prometheus: PrometheusSpec = Field(
        default=PrometheusSpec(), description="Prometheus address and query templates."
    )

    @property
    def interval_delta(self) -> timedelta:
        return parse_duration(self.interval)

    @field_validator("interval")
    @classmethod
    def _interval_minimum(cls, value: str) -> str:
        return at_least(value, _ONE_SECOND, "interval")


class SecretRef(ApiModel):
    name: str = Field(min_length=1, max_length=253, description="Secret name.")


class HealthProbeSpec(ApiModel):
    """A probe Job that runs `flagops probe <integration>`."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "duration(self.every) >= duration(self.timeout)",
                    "message": "every must be at least timeout (one probe runs at a time)",
                    "fieldPath": ".every",
                    "reason": "FieldValueInvalid",
                }
            ]
        }
    )

    integration: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="Integration to probe; defaults to the flag's spec.integration.",
    )
    image: str | None = Field(
        default=None, min_length=1, description="Probe image; defaults to the operator's setting."
    )
    secret_ref: SecretRef | None = Field(
        default=None, description="Secret mounted into the probe Job (credentials)."
    )
    timeout: Duration = Field(
        default="60s",
        description="Deadline of one probe Job (activeDeadlineSeconds).",
        json_schema_extra=_min_duration_rule("1s", "timeout must be at least 1s"),
    )
    every: Duration = Field(
        default="5m",
        description="Time between probes.",
        json_schema_extra=_min_duration_rule("1s", "every must be at least 1s"),
    )

    @property
    def timeout_delta(self) -> timedelta:
        return parse_duration(self.timeout)

    @field_validator("timeout", "every")
    @classmethod
    def _probe_minimum(cls, value: str, info: ValidationInfo) -> str:
        return at_least(value, _ONE_SECOND, str(info.field_name))

    @model_validator(mode="after")
    def _every_covers_timeout(self) -> HealthProbeSpec:
        if self.every_delta < self.timeout_delta:
            raise ValueError("every must be at least timeout (one probe runs at a time)")
        return self

    @property
    def every_delta(self) -> timedelta:
        return parse_duration(self.every)


class RolloutSpec(ApiModel):
    """The release owner's intent; Git-owned, never written by the operator."""

    flag_ref: FlagRef = Field(description="The FeatureFlag to roll out.")
    target_stage: Stage = Field(default=Stage.FULL, description="The stage to stop at.")
    paused: bool = Field(strict=True, default=False, description="Declarative pause.")
    auto_advance: bool = Field(
        strict=True,
        default=True,
        description="false: each stage waits for a manual `advance` action.",
    )
    stage_duration: Duration = Field(
        default="10m", description="Minimum bake time in a stage before it may advance."
    )
    internal_cohorts: list[Cohort] = Field(
        default=["internal"],
        max_length=64,
        description="Cohorts that get the INTERNAL stage.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    analysis: AnalysisSpec = Field(default=AnalysisSpec(), description="Analysis settings.")
    health_probe: HealthProbeSpec | None = Field(
        default=None, description="Optional integration health probe Job."
    )

    @property
    def stage_duration_delta(self) -> timedelta:
        return parse_duration(self.stage_duration)

    @field_validator("internal_cohorts")
    @classmethod
    def _unique_cohorts(cls, value: list[str]) -> list[str]:
        return unique_items(value, "internalCohorts")


# --- status ---------------------------------------------------------------


class AnalysisRecord(ApiModel):
    """One analysis: the two queries and the newest probe, judged."""

    time: Timestamp = Field(description="When the analysis ran.")
    error_rate: float | None = Field(
        default=None, description="Errors / operations; unset: no data."
    )
    samples: float | None = Field(
        default=None, description="Operations in the window (Prometheus increase())."
    )
    verdict: Verdict = Field(description="Pass, Fail, Inconclusive or Error.")
    message: str | None = Field(default=None, description="Why, in words.")


class StageTotals(ApiModel):
    """What a grouped analysis has counted of the current stage, so a restart resumes it."""

    stage: Stage = Field(description="The stage these totals belong to.")
    since: Timestamp = Field(description="When the stage's exposure began; counting starts here.")
    through: Timestamp = Field(description="The analysis tick the totals run up to.")
    operations: float = Field(default=0.0, ge=0, description="Operations counted.")
    errors: float = Field(default=0.0, ge=0, description="Failed operations counted.")


class ProbeRecord(ApiModel):
    """The outcome of one finished probe Job."""

    job: str = Field(description="The probe Job's name.")
    time: Timestamp = Field(description="When the probe finished.")
    result: ProbeResult = Field(description="Succeeded or Failed.")
    message: str | None = Field(default=None, description="The probe's own summary.")


class HealthRecord(ApiModel):
    """One entry of healthHistory (an analysis or a probe), newest first."""

    time: Timestamp
    source: HealthSource = Field(description="Analysis or Probe.")
    verdict: Verdict
    stage: Stage | None = None
    error_rate: float | None = None
    samples: float | None = None
    job: str | None = None
    message: str | None = None


class ActionRecord(ApiModel):
    """The last `flagops.dev/action` annotation the operator handled."""

    name: str = Field(description="The verb (advance, pause, ...).")
    id: str = Field(description="The action id; each id is performed once.")
    at: Timestamp = Field(description="When the operator handled it.")
    result: ActionResult = Field(description="Succeeded, Rejected or Failed.")
    reason: str | None = Field(default=None, description="The reason given with the action.")
    message: str | None = Field(default=None, description="What happened, in words.")


class PendingEvent(ApiModel):
    """An Event recorded with the status change it announces, until it is posted."""

    sequence: int = Field(ge=1, description="Names the Event: <rollout>.<uid>.<sequence>.")
    type: str = Field(description="Normal or Warning.", max_length=16)
    reason: str = Field(description="The Event's reason.", max_length=128)
    message: str = Field(description="The Event's message.", max_length=1024)
    time: Timestamp = Field(description="When it happened.")


class RolloutStatus(ApiModel):
    """Everything the decision needs, so a restarted operator continues where it stopped."""

    stage: Stage | None = Field(default=None, description="Current stage.")
    phase: Phase | None = Field(default=None, description="Lifecycle phase.")
    message: str | None = Field(default=None, description="Human-readable state.")
    stage_started_at: Timestamp | None = Field(
        default=None, description="When the current stage began."
    )
    current_percent: int | None = Field(
        default=None, ge=0, le=100, description="Percent the current stage publishes."
    )
    consecutive_failures: int = Field(default=0, ge=0, description="Fail verdicts in a row.")
    consecutive_errors: int = Field(default=0, ge=0, description="Error verdicts in a row.")
    last_analysis: AnalysisRecord | None = Field(default=None, description="Newest analysis.")
    last_probe: ProbeRecord | None = Field(default=None, description="Newest finished probe.")
    health_history: list[HealthRecord] = Field(
        default=[],
        max_length=HEALTH_HISTORY_LIMIT,
        description="Changes of health, newest first, at most 20: every probe result, and"
        " each analysis whose verdict or stage differs from the previous analysis entry.",
    )
    last_action: ActionRecord | None = Field(default=None, description="Newest handled action.")
    conditions: list[Condition] = Field(
        default=[],
        description="Validated, Healthy, Progressing.",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation this status reflects."
    )
    # Bookkeeping beyond DESIGN.md's list, so a restart resumes exactly (docs/api.md).
    pause_reason: str | None = Field(
        default=None,
        description="Why the Rollout is Paused: SpecPaused, Manual, AnalysisFailed,"
        " PrometheusUnavailable.",
    )
    probe_sequence: int = Field(
        default=0, ge=0, description="Number of probe Jobs started; part of the next Job name."
    )
    active_probe_job: str | None = Field(
        default=None, description="The probe Job running now, if any."
    )
    active_probe_started_at: Timestamp | None = Field(
        default=None, description="When the running probe Job was created."
    )
    adopted_at: Timestamp | None = Field(
        default=None, description="When the Rollout adopted its flag."
    )
    rolled_back_generation: int | None = Field(
        default=None,
        description="metadata.generation at rollback; a newer generation (or retry) restarts.",
    )
    stage_published_at: Timestamp | None = Field(
        default=None,
        description="When the flag ConfigMap first carried the current stage; the bake"
        " (stageDuration) counts from here.",
    )
    stage_totals: StageTotals | None = Field(
        default=None,
        description="Operations and errors counted in the current stage by grouped analysis,"
        " checkpointed with each status write.",
    )
    event_sequence: int = Field(
        default=0, ge=0, description="Number of Events recorded; part of the next Event name."
    )
    pending_events: list[PendingEvent] = Field(
        default=[],
        max_length=PENDING_EVENTS_LIMIT,
        description="Events decided and recorded but not yet confirmed posted; posted"
        " (once, under their own names) after a crash.",
    )

    def with_health(self, record: HealthRecord) -> list[HealthRecord]:
        """healthHistory with `record` in front, trimmed to the limit."""
        return [record, *self.health_history][:HEALTH_HISTORY_LIMIT]


class Rollout(ApiObject):
    """A whole Rollout object as the API returns it."""

    kind: str = "Rollout"
    spec: RolloutSpec
    status: RolloutStatus = RolloutStatus()

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> Rollout:
        """The object as the API returned it; never raises. A part that does not parse is
        named in `problems` and read as far as it goes (defaults for the rest; a spec
        without a readable flagRef names the flag "")."""
        spec, spec_problem = read_part(RolloutSpec, obj.get("spec"), "spec")
        status, status_problem = read_part(RolloutStatus, obj.get("status"), "status")
        rollout = cls(
            metadata=read_metadata(obj),
            spec=spec or RolloutSpec.model_construct(flag_ref=FlagRef.model_construct(name="")),
            status=status or RolloutStatus(),
        )
        rollout._with_problems({"spec": spec_problem, "status": status_problem})
        return rollout
