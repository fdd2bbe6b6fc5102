"""Between `Rollout.status` and the decision's own types, both ways.

`state_from_status(apply_to_status(...).status)` gives back the state the
decision produced, which is what lets a restarted operator continue exactly.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from flagops.api.common import ConditionStatus, get_condition, set_condition
from flagops.api.rollout import (
    PENDING_EVENTS_LIMIT,
    ActionRecord,
    AnalysisRecord,
    HealthRecord,
    HealthSource,
    PauseReason,
    PendingEvent,
    Phase,
    ProbeRecord,
    ProbeResult,
    RolloutCondition,
    RolloutSpec,
    RolloutStatus,
    Verdict,
)
from flagops.api.stages import PERCENT, Stage
from flagops.rollouts.model import (
    ADOPTED,
    Decision,
    DecisionInputs,
    DecisionSpec,
    Event,
    Hold,
    LastAction,
    ProbeOutcome,
    Publication,
    RolloutState,
)

# Holds as status.pauseReason spells them. A rollback also sets
# status.rolledBackGeneration; pauseReason then says who rolled back.
_HOLD_TO_REASON: dict[Hold, PauseReason] = {
    Hold.MANUAL_PAUSE: PauseReason.MANUAL,
    Hold.ANALYSIS_FAILED: PauseReason.ANALYSIS_FAILED,
    Hold.PROMETHEUS_UNAVAILABLE: PauseReason.PROMETHEUS_UNAVAILABLE,
    Hold.MANUAL_ROLLBACK: PauseReason.MANUAL,
    Hold.ROLLED_BACK_ON_FAILURE: PauseReason.ANALYSIS_FAILED,
}


def decision_spec(spec: RolloutSpec, generation: int) -> DecisionSpec:
    analysis = spec.analysis
    return DecisionSpec(
        generation=generation,
        target_stage=spec.target_stage,
        paused=spec.paused,
        auto_advance=spec.auto_advance,
        stage_duration=spec.stage_duration_delta,
        min_sample_size=analysis.min_sample_size,
        failure_limit=analysis.failure_limit,
        consecutive_error_limit=analysis.consecutive_error_limit,
        pause_on_error=analysis.pause_on_error,
        rollback_on_error=analysis.rollback_on_error,
        probe_configured=spec.health_probe is not None,
    )


def _hold_from_status(status: RolloutStatus) -> Hold | None:
    reason = status.pause_reason
    if status.rolled_back_generation is not None:
        return Hold.MANUAL_ROLLBACK if reason == PauseReason.MANUAL else Hold.ROLLED_BACK_ON_FAILURE
    if reason == PauseReason.MANUAL:
        return Hold.MANUAL_PAUSE
    if reason == PauseReason.ANALYSIS_FAILED:
        return Hold.ANALYSIS_FAILED
    if reason == PauseReason.PROMETHEUS_UNAVAILABLE:
        return Hold.PROMETHEUS_UNAVAILABLE
    # SpecPaused (or nothing): the spec is read afresh every round.
    return None


def state_from_status(status: RolloutStatus) -> RolloutState:
    validated = get_condition(status.conditions, RolloutCondition.VALIDATED)
    analysis = status.last_analysis
    action = status.last_action
    return RolloutState(
        stage=status.stage,
        stage_started_at=status.stage_started_at,
        stage_published_at=status.stage_published_at,
        phase=status.phase or Phase.PENDING,
        consecutive_failures=status.consecutive_failures,
        consecutive_errors=status.consecutive_errors,
        hold=_hold_from_status(status),
        validated=validated is not None and validated.status is ConditionStatus.TRUE,
        observed_generation=status.observed_generation,
        last_verdict=analysis.verdict if analysis else None,
        last_analysis_at=analysis.time if analysis else None,
        last_action=(
            LastAction(
                name=action.name,
                id=action.id,
                at=action.at,
                result=action.result,
                reason=action.reason,
                message=action.message or "",
            )
            if action
            else None
        ),
    )


def probe_outcome(status: RolloutStatus) -> ProbeOutcome:
    """The newest finished probe's result; `running` only before any has finished."""
    if status.last_probe is not None:
        if status.last_probe.result is ProbeResult.SUCCEEDED:
            return ProbeOutcome.PASSED
        return ProbeOutcome.FAILED
    if status.active_probe_job:
        return ProbeOutcome.RUNNING
    return ProbeOutcome.NONE


def record_probe(status: RolloutStatus, record: ProbeRecord, stage: Stage | None) -> RolloutStatus:
    """Status with a finished probe in lastProbe and healthHistory."""
    entry = HealthRecord(
        time=record.time,
        source=HealthSource.PROBE,
        verdict=Verdict.PASS if record.result is ProbeResult.SUCCEEDED else Verdict.FAIL,
        stage=stage,
        job=record.job,
        message=record.message,
    )
    return status.model_copy(
        update={
            "last_probe": record,
            "health_history": status.with_health(entry),
            "active_probe_job": None,
            "active_probe_started_at": None,
        }
    )


def _healthy(verdict: Verdict) -> tuple[ConditionStatus, str]:
    if verdict is Verdict.PASS:
        return ConditionStatus.TRUE, "AnalysisPassed"
    if verdict is Verdict.FAIL:
        return ConditionStatus.FALSE, "AnalysisFailed"
    if verdict is Verdict.INCONCLUSIVE:
        return ConditionStatus.UNKNOWN, "WaitingForSamples"
    return ConditionStatus.UNKNOWN, "PrometheusUnavailable"


def _health_changed(status: RolloutStatus, verdict: Verdict, stage: Stage | None) -> bool:
    """Whether an analysis is news for healthHistory: its verdict or stage differs from
    the newest analysis there. A steady Rollout then keeps one entry per stage rather
    than twenty copies of the same Pass (lastAnalysis has the newest figures), which is
    most of its memory and watch traffic at 10,000 Rollouts."""
    newest = next((h for h in status.health_history if h.source is HealthSource.ANALYSIS), None)
    return newest is None or (newest.verdict, newest.stage) != (verdict, stage)


def apply_to_status(
    status: RolloutStatus,
    decision: Decision,
    inputs: DecisionInputs,
    spec: DecisionSpec,
    now: datetime,
) -> RolloutStatus:
    """The status to write after `decision` (a new object; `status` is untouched)."""
    state = decision.state
    generation = spec.generation
    conditions = list(status.conditions)
    if inputs.validated is not None:
        conditions = set_condition(
            conditions,
            RolloutCondition.VALIDATED,
            ConditionStatus.TRUE if inputs.validated else ConditionStatus.FALSE,
            "ChecksPassed" if inputs.validated else "ChecksFailed",
            inputs.degraded_reason or ("" if inputs.validated else inputs.analysis_message),
            now,
            generation,
        )
    update: dict[str, object] = {}
    if inputs.verdict is not None:
        health_status, health_reason = _healthy(inputs.verdict)
        conditions = set_condition(
            conditions,
            RolloutCondition.HEALTHY,
            health_status,
            health_reason,
            inputs.analysis_message,
            now,
            generation,
        )
        record = AnalysisRecord(
            time=now,
            error_rate=inputs.error_rate,
            samples=inputs.samples,
            verdict=inputs.verdict,
            message=inputs.analysis_message or None,
        )
        update["last_analysis"] = record
        if _health_changed(status, inputs.verdict, state.stage):
            update["health_history"] = status.with_health(
                HealthRecord(
                    time=now,
                    source=HealthSource.ANALYSIS,
                    verdict=inputs.verdict,
                    stage=state.stage,
                    error_rate=inputs.error_rate,
                    samples=inputs.samples,
                    message=inputs.analysis_message or None,
                )
            )
    progressing = state.phase is Phase.PROGRESSING
    hold = state.hold
    pause_reason: str | None = _HOLD_TO_REASON[hold].value if hold else None
    if pause_reason is None and spec.paused and state.phase is Phase.PAUSED:
        pause_reason = PauseReason.SPEC.value
    conditions = set_condition(
        conditions,
        RolloutCondition.PROGRESSING,
        ConditionStatus.TRUE if progressing else ConditionStatus.FALSE,
        state.phase.value if not (hold and state.phase is Phase.PAUSED) else hold.value,
        decision.message,
        now,
        generation,
    )
    rolled_back_generation: int | None = None
    if state.rolled_back:
        rolled_back_generation = (
            generation if status.rolled_back_generation is None else status.rolled_back_generation
        )
    adopted = any(t.reason == ADOPTED for t in decision.transitions)
    action = state.last_action
    update.update(
        stage=state.stage,
        phase=state.phase,
        message=decision.message,
        stage_started_at=state.stage_started_at,
        stage_published_at=state.stage_published_at,
        current_percent=None if state.stage is None else PERCENT[state.stage],
        consecutive_failures=state.consecutive_failures,
        consecutive_errors=state.consecutive_errors,
        last_action=(
            ActionRecord(
                name=action.name,
                id=action.id,
                at=action.at,
                result=action.result,
                reason=action.reason,
                message=action.message or None,
            )
            if action
            else None
        ),
        conditions=conditions,
        observed_generation=state.observed_generation,
        pause_reason=pause_reason,
        rolled_back_generation=rolled_back_generation,
        adopted_at=now if adopted else status.adopted_at,
    )
    return status.model_copy(update=update)


def record_events(status: RolloutStatus, events: Sequence[Event], now: datetime) -> RolloutStatus:
    """Status with `events` numbered and added to pendingEvents, to be written with it.

    Recording an Event in the same status write as the change it announces is what
    makes announcements crash-safe: whoever reads the status next posts it.
    """
    if not events:
        return status
    sequence = status.event_sequence
    pending = list(status.pending_events)
    for event in events:
        sequence += 1
        pending.append(
            PendingEvent(
                sequence=sequence,
                type=event.type.value,
                reason=event.reason,
                message=event.message[:1024],
                time=now,
            )
        )
    # Only an Event API refusing for long gets here; the oldest announcements go first.
    pending = pending[-PENDING_EVENTS_LIMIT:]
    return status.model_copy(update={"event_sequence": sequence, "pending_events": pending})


def without_posted(status: RolloutStatus, posted: Collection[int]) -> RolloutStatus:
    """Status without the pending Events known to be posted."""
    if not any(e.sequence in posted for e in status.pending_events):
        return status
    pending = [e for e in status.pending_events if e.sequence not in posted]
    return status.model_copy(update={"pending_events": pending})


def event_name(rollout_name: str, uid: str, sequence: int) -> str:
    """The Event's own name: the same after any restart, so it is posted once."""
    suffix = f".{uid[:8]}.{sequence}"
    head = rollout_name[: 253 - len(suffix)].rstrip(".-")
    return f"{head}{suffix}"


def publication(flag_status: Mapping[str, Any], source: str) -> Publication | None:
    """The stage the flag ConfigMap carries for the Rollout whose source is `source`
    (`rollout/<name>`), and since when, as the publisher reported it on the
    FeatureFlag's status; None when it carries none of that Rollout's stages."""
    effective = flag_status.get("effective") or {}
    stage, since = effective.get("stage"), flag_status.get("publishedAt")
    if effective.get("source") != source or not isinstance(stage, str):
        return None
    if stage not in Stage.__members__ or not isinstance(since, str):
        return None
    try:
        at = datetime.fromisoformat(since.replace("Z", "+00:00"))
    except ValueError:
        return None
    return Publication(Stage(stage), at) if at.tzinfo is not None else None
