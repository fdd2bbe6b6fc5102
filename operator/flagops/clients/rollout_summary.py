"""What the user-side clients report about Rollouts: typed summaries of the API's objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from flagops.api.actions import ACTION_ANNOTATION
from flagops.api.common import Condition, parse_timestamp
from flagops.api.rollout import (
    ActionRecord,
    AnalysisRecord,
    HealthRecord,
    Phase,
    ProbeRecord,
    RolloutStatus,
)
from flagops.api.stages import Stage

__all__ = [
    "ActionOutcome",
    "Check",
    "RolloutSummary",
    "lenient_status",
    "summarize_rollout",
]


@dataclass(frozen=True)
class RolloutSummary:
    """A Rollout's spec highlights and status, typed."""

    name: str
    namespace: str
    flag: str
    target_stage: Stage
    paused: bool
    auto_advance: bool
    error_threshold: float
    min_sample_size: int
    generation: int | None
    created: datetime | None
    status: RolloutStatus
    pending_action: str | None = None  # the annotation, when no lastAction reports its id yet

    @property
    def stage(self) -> Stage | None:
        return self.status.stage

    @property
    def phase(self) -> Phase | None:
        return self.status.phase

    @property
    def percent(self) -> int | None:
        return self.status.current_percent

    @property
    def last_analysis(self) -> AnalysisRecord | None:
        return self.status.last_analysis

    @property
    def last_probe(self) -> ProbeRecord | None:
        return self.status.last_probe

    @property
    def last_action(self) -> ActionRecord | None:
        return self.status.last_action

    @property
    def history(self) -> list[HealthRecord]:
        return self.status.health_history

    @property
    def conditions(self) -> list[Condition]:
        return self.status.conditions


@dataclass(frozen=True)
class ActionOutcome:
    name: str
    verb: str
    id: str
    result: str  # Succeeded, Rejected or Failed
    message: str | None
    status: RolloutSummary

    @property
    def succeeded(self) -> bool:
        return self.result == "Succeeded"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    message: str
    skipped: bool = False  # could not be checked from here; does not fail validation


def lenient_status(raw: dict[str, Any]) -> RolloutStatus:
    """The status model; a field this client version cannot read is dropped, not fatal."""
    try:
        return RolloutStatus.model_validate(raw)
    except ValidationError as exc:
        bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
        try:
            return RolloutStatus.model_validate({k: v for k, v in raw.items() if k not in bad})
        except ValidationError:
            return RolloutStatus()


def summarize_rollout(obj: dict[str, Any]) -> RolloutSummary:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    analysis_spec = spec.get("analysis") or {}
    status = lenient_status(obj.get("status") or {})
    annotation = (meta.get("annotations") or {}).get(ACTION_ANNOTATION)
    pending = None
    if annotation:
        _, _, action_id = str(annotation).rpartition("@")
        if status.last_action is None or status.last_action.id != action_id:
            pending = str(annotation)
    raw_target = spec.get("targetStage", Stage.FULL.value)
    return RolloutSummary(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        flag=str((spec.get("flagRef") or {}).get("name", "")),
        target_stage=Stage(raw_target) if raw_target in Stage.__members__ else Stage.FULL,
        paused=bool(spec.get("paused", False)),
        auto_advance=bool(spec.get("autoAdvance", True)),
        error_threshold=float(analysis_spec.get("errorThreshold", 0.05)),
        min_sample_size=int(analysis_spec.get("minSampleSize", 100)),
        generation=meta.get("generation"),
        created=parse_timestamp(meta.get("creationTimestamp")),
        status=status,
        pending_action=pending,
    )
