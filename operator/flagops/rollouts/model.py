"""The decision's vocabulary: what a round knows, remembers and decides.

`RolloutState` is everything the decision remembers (all of it in status),
`DecisionInputs` what a round gathered, `Decision` what `decide()` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from flagops.api.actions import Action
from flagops.api.rollout import ActionResult, Phase, Verdict
from flagops.api.stages import Stage


class Hold(StrEnum):
    """Why a Rollout stopped moving, remembered until someone lifts it.

    A declarative `spec.paused` is not a Hold: it is read from the spec each
    round, so unpausing in Git resumes without any action.
    """

    MANUAL_PAUSE = "ManualPause"
    ANALYSIS_FAILED = "AnalysisFailed"
    PROMETHEUS_UNAVAILABLE = "PrometheusUnavailable"
    MANUAL_ROLLBACK = "ManualRollback"
    ROLLED_BACK_ON_FAILURE = "RolledBackOnFailure"

    @property
    def is_rollback(self) -> bool:
        return self in (Hold.MANUAL_ROLLBACK, Hold.ROLLED_BACK_ON_FAILURE)

    @property
    def survives_new_generation(self) -> bool:
        """Only a human's pause outlives a spec change; everything else was the
        operator's own reaction to the old spec (DESIGN: a rollback lasts
        "until retry or a new spec generation")."""
        return self is Hold.MANUAL_PAUSE


class ProbeOutcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NONE = "none"
    RUNNING = "running"


class EventType(StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


# Transition reasons, used as the `reason` label of flagops_rollout_transitions_total.
ADOPTED = "Adopted"
ANALYSIS_PASSED = "AnalysisPassed"
VALIDATED = "Validated"
MANUAL_ADVANCE = "ManualAdvance"
FORCED_ADVANCE = "ForcedAdvance"
TARGET_LOWERED = "TargetLowered"
MANUAL_ROLLBACK = "ManualRollback"
ANALYSIS_FAILED = "AnalysisFailed"


@dataclass(frozen=True)
class DecisionSpec:
    """The part of `Rollout.spec` (and metadata.generation) the decision reads."""

    generation: int
    target_stage: Stage = Stage.FULL
    paused: bool = False
    auto_advance: bool = True
    stage_duration: timedelta = timedelta(minutes=10)
    min_sample_size: int = 100
    failure_limit: int = 1
    consecutive_error_limit: int = 4
    pause_on_error: bool = True
    rollback_on_error: bool = False
    probe_configured: bool = False


@dataclass(frozen=True)
class LastAction:
    name: str
    id: str
    at: datetime
    result: ActionResult
    reason: str | None = None
    message: str = ""


@dataclass(frozen=True)
class RolloutState:
    """Everything the decision remembers between rounds; all of it lives in status."""

    stage: Stage | None = None  # None until the flag is adopted
    stage_started_at: datetime | None = None
    # When the stage's exposure reached apps (the flag ConfigMap carried it); the bake
    # clock counts from here, never from the status write. None: not published yet.
    stage_published_at: datetime | None = None
    phase: Phase = Phase.PENDING
    consecutive_failures: int = 0
    consecutive_errors: int = 0
    hold: Hold | None = None
    validated: bool = False
    observed_generation: int | None = None
    last_verdict: Verdict | None = None
    last_analysis_at: datetime | None = None
    last_action: LastAction | None = None

    @property
    def rolled_back(self) -> bool:
        return self.hold is not None and self.hold.is_rollback


@dataclass(frozen=True)
class FlagSnapshot:
    """The FeatureFlag's own spec, read for adoption only."""

    enabled: bool
    rollout_percent: int


@dataclass(frozen=True)
class Publication:
    """What the flag ConfigMap carries now for this Rollout's flag, and since when
    (the publisher's record on the FeatureFlag: status.effective and publishedAt)."""

    stage: Stage
    since: datetime


@dataclass(frozen=True)
class DecisionInputs:
    """What the operator observed this round."""

    verdict: Verdict | None = None  # None: no analysis was taken this round
    error_rate: float | None = None
    samples: float | None = None
    analysis_message: str = ""
    probe: ProbeOutcome = ProbeOutcome.NONE
    action: Action | None = None  # a parsed flagops.dev/action annotation
    # None: not re-checked this round; the stored Validated condition stands.
    validated: bool | None = None
    # Set when the spec is wrong in a way the schema cannot catch (missing flag,
    # a second Rollout for the flag, a query that does not parse).
    degraded_reason: str | None = None
    flag: FlagSnapshot | None = None
    # None: the published flag is not (yet) held by this Rollout at any stage.
    published: Publication | None = None


@dataclass(frozen=True)
class Event:
    type: EventType
    reason: str
    message: str


@dataclass(frozen=True)
class Transition:
    from_stage: Stage | None
    to_stage: Stage
    reason: str


@dataclass(frozen=True)
class Decision:
    state: RolloutState
    events: tuple[Event, ...] = ()
    transitions: tuple[Transition, ...] = ()
    message: str = ""
