"""What the user-side clients report about Rollouts: typed summaries of the API's objects."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flagops.api.actions import ACTION_ANNOTATION
from flagops.api.common import Condition, parse_timestamp
from flagops.api.rollout import (
    ActionRecord,
    AnalysisRecord,
    HealthRecord,
    Phase,
    ProbeRecord,
    Rollout,
    RolloutStatus,
)
from flagops.api.stages import Stage

__all__ = [
    "ActionOutcome",
    "Check",
    "RolloutSummary",
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


def summarize_rollout(obj: dict[str, Any]) -> RolloutSummary:
    """What `kubectl flagops status` shows; a part this client cannot read takes its
    defaults (Rollout.from_object), never fails."""
    rollout = Rollout.from_object(obj)
    spec, status = rollout.spec, rollout.status
    annotation = rollout.annotations.get(ACTION_ANNOTATION)
    pending = None
    if annotation:
        _, _, action_id = str(annotation).rpartition("@")
        if status.last_action is None or status.last_action.id != action_id:
            pending = str(annotation)
    generation = rollout.metadata.get("generation")
    return RolloutSummary(
        name=rollout.name,
        namespace=rollout.namespace,
        flag=spec.flag_ref.name,
        target_stage=spec.target_stage,
        paused=spec.paused,
        auto_advance=spec.auto_advance,
        error_threshold=spec.analysis.error_threshold,
        min_sample_size=spec.analysis.min_sample_size,
        generation=generation if isinstance(generation, int) else None,
        created=parse_timestamp(rollout.created),
        status=status,
        pending_action=pending,
    )
