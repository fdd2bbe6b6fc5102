"""Every rule of docs/decisions.md, one row each."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flagops.api.actions import Action, ActionVerb
from flagops.api.rollout import ActionResult, Phase, Verdict
from flagops.api.stages import Stage
from flagops.rollouts.decide import decide
from flagops.rollouts.model import (
    Decision,
    DecisionInputs,
    DecisionSpec,
    FlagSnapshot,
    Hold,
    LastAction,
    ProbeOutcome,
    RolloutState,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BAKED = T0 + timedelta(minutes=11)
FRESH = T0 + timedelta(minutes=3)

PASS = Verdict.PASS
FAIL = Verdict.FAIL
ERROR = Verdict.ERROR
INCONCLUSIVE = Verdict.INCONCLUSIVE


def spec(**kw: Any) -> DecisionSpec:
    return DecisionSpec(**{"generation": 1, **kw})


def state(**kw: Any) -> RolloutState:
    base: dict[str, Any] = {
        "stage": Stage.BETA,
        "stage_started_at": T0,
        "stage_published_at": T0,
        "phase": Phase.PROGRESSING,
        "validated": True,
        "observed_generation": 1,
    }
    return RolloutState(**{**base, **kw})


def action(
    verb: ActionVerb, id_: str = "a1", force: bool = False, reason: str | None = None
) -> Action:
    return Action(verb=verb, id=id_, reason=reason, force=force)


@dataclass(frozen=True)
class Case:
    id: str
    state: RolloutState
    inputs: DecisionInputs
    spec: DecisionSpec = field(default_factory=spec)
    now: datetime = BAKED
    stage: Stage | None = Stage.BETA
    phase: Phase = Phase.PROGRESSING
    hold: Hold | None = None
    failures: int | None = None
    errors: int | None = None
    transition_reasons: tuple[str, ...] | None = None  # None: not checked
    event_reasons: tuple[str, ...] | None = None
    action_result: ActionResult | None = None
    message_contains: str = ""


CASES = [
    # --- Pending, validation, adoption ---------------------------------
    Case(
        "pending-until-validated",
        state(stage=None, stage_started_at=None, phase=Phase.PENDING, validated=False),
        DecisionInputs(validated=False, flag=FlagSnapshot(True, 30)),
        stage=None,
        phase=Phase.PENDING,
        message_contains="waiting for validation",
    ),
    Case(
        "adopt-flag-off-at-disabled-then-first-stage",
        state(stage=None, stage_started_at=None, phase=Phase.PENDING, validated=False),
        DecisionInputs(validated=True, flag=FlagSnapshot(False, 80)),
        stage=Stage.INTERNAL,
        transition_reasons=("Adopted", "Validated"),
    ),
    Case(
        "adopt-at-highest-stage-not-above-percent",
        state(stage=None, stage_started_at=None, phase=Phase.PENDING, validated=False),
        DecisionInputs(validated=True, flag=FlagSnapshot(True, 30)),
        stage=Stage.EARLY_ACCESS,
        transition_reasons=("Adopted",),
        message_contains="waiting for the stage to be published",
    ),
    Case(
        "adopt-enabled-zero-percent-at-internal",
        state(stage=None, stage_started_at=None, phase=Phase.PENDING, validated=False),
        DecisionInputs(validated=True, flag=FlagSnapshot(True, 0)),
        stage=Stage.INTERNAL,
        transition_reasons=("Adopted",),
    ),
    Case(
        "adopt-above-target-steps-back-to-target",
        state(stage=None, stage_started_at=None, phase=Phase.PENDING, validated=False),
        DecisionInputs(validated=True, flag=FlagSnapshot(True, 100)),
        spec=spec(target_stage=Stage.BETA),
        stage=Stage.BETA,
        phase=Phase.COMPLETED,
        transition_reasons=("Adopted", "TargetLowered"),
    ),
    Case(
        "adopt-uses-stored-validated-condition",
        state(stage=None, stage_started_at=None, phase=Phase.PENDING, validated=True),
        DecisionInputs(validated=None, flag=FlagSnapshot(True, 10)),
        stage=Stage.BETA,
        transition_reasons=("Adopted",),
    ),
    Case(
        "no-adoption-without-the-flag-state",
        state(stage=None, stage_started_at=None, phase=Phase.PENDING, validated=False),
        DecisionInputs(validated=True, flag=None),
        stage=None,
        phase=Phase.PENDING,
        message_contains="waiting for the flag's current state",
    ),
    Case(
        "degraded-blocks-adoption",
        state(stage=None, stage_started_at=None, phase=Phase.PENDING, validated=False),
        DecisionInputs(validated=True, degraded_reason="flag calendar_sync not found"),
        stage=None,
        phase=Phase.DEGRADED,
        event_reasons=("Degraded",),
        message_contains="flag calendar_sync not found",
    ),
    Case(
        "degraded-holds-stage-even-on-pass",
        state(),
        DecisionInputs(verdict=PASS, degraded_reason="second Rollout for the flag"),
        stage=Stage.BETA,
        phase=Phase.DEGRADED,
    ),
    Case(
        "degraded-recovers-where-it-stopped",
        state(phase=Phase.DEGRADED),
        DecisionInputs(verdict=INCONCLUSIVE, samples=3),
        stage=Stage.BETA,
        phase=Phase.PROGRESSING,
        event_reasons=("Recovered",),
    ),
    # --- DISABLED -> INTERNAL ------------------------------------------
    Case(
        "first-stage-needs-no-traffic",
        state(stage=Stage.DISABLED),
        DecisionInputs(verdict=INCONCLUSIVE, samples=0),
        now=T0,
        stage=Stage.INTERNAL,
        transition_reasons=("Validated",),
    ),
    Case(
        "first-stage-waits-for-passing-probe",
        state(stage=Stage.DISABLED),
        DecisionInputs(probe=ProbeOutcome.RUNNING),
        spec=spec(probe_configured=True),
        stage=Stage.DISABLED,
        message_contains="waiting for a passing health probe (newest: running)",
    ),
    Case(
        "first-stage-after-passing-probe",
        state(stage=Stage.DISABLED),
        DecisionInputs(probe=ProbeOutcome.PASSED),
        spec=spec(probe_configured=True),
        stage=Stage.INTERNAL,
        transition_reasons=("Validated",),
    ),
    Case(
        "failed-probe-at-disabled-holds-without-pausing",
        state(stage=Stage.DISABLED),
        DecisionInputs(verdict=FAIL, probe=ProbeOutcome.FAILED),
        spec=spec(probe_configured=True),
        stage=Stage.DISABLED,
        failures=1,
        hold=None,
    ),
    Case(
        "first-stage-respects-auto-advance-off",
        state(stage=Stage.DISABLED),
        DecisionInputs(),
        spec=spec(auto_advance=False),
        stage=Stage.DISABLED,
        message_contains="waiting for an advance action",
    ),
    # --- advancing on Pass ----------------------------------------------
    Case(
        "pass-after-bake-advances-one",
        state(),
        DecisionInputs(verdict=PASS, samples=500, error_rate=0.01),
        stage=Stage.EARLY_ACCESS,
        transition_reasons=("AnalysisPassed",),
        event_reasons=("StageAdvanced",),
    ),
    Case(
        "pass-exactly-at-bake-advances",
        state(),
        DecisionInputs(verdict=PASS),
        now=T0 + timedelta(minutes=10),
        stage=Stage.EARLY_ACCESS,
        transition_reasons=("AnalysisPassed",),
    ),
    Case(
        "pass-before-bake-holds",
        state(),
        DecisionInputs(verdict=PASS),
        now=FRESH,
        stage=Stage.BETA,
        message_contains="baking 3m of 10m",
    ),
    Case(
        "no-analysis-this-round-never-advances",
        state(last_verdict=PASS, last_analysis_at=BAKED),
        DecisionInputs(verdict=None),
        stage=Stage.BETA,
    ),
    Case(
        "auto-advance-off-waits",
        state(),
        DecisionInputs(verdict=PASS),
        spec=spec(auto_advance=False),
        stage=Stage.BETA,
        message_contains="waiting for an advance action",
    ),
    Case(
        "advance-resets-bake-clock",
        state(stage=Stage.LIMITED),
        DecisionInputs(verdict=PASS),
        stage=Stage.GENERAL,
    ),
    Case(
        "reaching-target-completes",
        state(stage=Stage.GENERAL),
        DecisionInputs(verdict=PASS),
        stage=Stage.FULL,
        phase=Phase.COMPLETED,
        event_reasons=("StageAdvanced", "Completed"),
    ),
    Case(
        "never-above-target",
        state(stage=Stage.BETA, phase=Phase.COMPLETED),
        DecisionInputs(verdict=PASS),
        spec=spec(target_stage=Stage.BETA),
        stage=Stage.BETA,
        phase=Phase.COMPLETED,
        event_reasons=(),
    ),
    # --- Inconclusive ----------------------------------------------------
    Case(
        "inconclusive-holds-and-counts-samples",
        state(consecutive_errors=2),
        DecisionInputs(verdict=INCONCLUSIVE, samples=42),
        spec=spec(min_sample_size=100),
        stage=Stage.BETA,
        failures=0,
        errors=0,
        message_contains="waiting for samples: 42 of 100",
    ),
    Case(
        "inconclusive-without-data-says-zero",
        state(),
        DecisionInputs(verdict=INCONCLUSIVE, samples=None),
        message_contains="waiting for samples: 0 of 100",
    ),
    Case(
        "inconclusive-with-enough-samples-says-why",
        state(),
        DecisionInputs(
            verdict=INCONCLUSIVE,
            samples=400,
            analysis_message="waiting for a health probe result (running)",
        ),
        message_contains="Inconclusive: waiting for a health probe result (running)",
    ),
    Case(
        "inconclusive-keeps-fail-streak",
        state(consecutive_failures=1),
        DecisionInputs(verdict=INCONCLUSIVE, samples=3),
        spec=spec(failure_limit=2),
        failures=1,
    ),
    # --- Fail ------------------------------------------------------------
    Case(
        "fail-pauses-at-limit",
        state(),
        DecisionInputs(verdict=FAIL, error_rate=0.2, analysis_message="error rate 20% > 5%"),
        phase=Phase.PAUSED,
        hold=Hold.ANALYSIS_FAILED,
        failures=1,
        event_reasons=("Paused",),
        message_contains="error rate 20% > 5%",
    ),
    Case(
        "fail-below-limit-holds",
        state(),
        DecisionInputs(verdict=FAIL),
        spec=spec(failure_limit=3),
        failures=1,
        hold=None,
    ),
    Case(
        "fails-reach-limit",
        state(consecutive_failures=2),
        DecisionInputs(verdict=FAIL),
        spec=spec(failure_limit=3),
        phase=Phase.PAUSED,
        hold=Hold.ANALYSIS_FAILED,
        failures=3,
    ),
    Case(
        "pass-breaks-fail-streak",
        state(consecutive_failures=2, consecutive_errors=1),
        DecisionInputs(verdict=PASS),
        spec=spec(failure_limit=3),
        now=FRESH,
        failures=0,
        errors=0,
    ),
    Case(
        "fail-rolls-back-with-rollback-on-error",
        state(stage=Stage.LIMITED),
        DecisionInputs(verdict=FAIL),
        spec=spec(rollback_on_error=True),
        stage=Stage.DISABLED,
        phase=Phase.ROLLED_BACK,
        hold=Hold.ROLLED_BACK_ON_FAILURE,
        failures=0,
        transition_reasons=("AnalysisFailed",),
        event_reasons=("RolledBack",),
    ),
    Case(
        "rollback-on-error-wins-over-pause-on-error-false",
        state(stage=Stage.LIMITED),
        DecisionInputs(verdict=FAIL),
        spec=spec(rollback_on_error=True, pause_on_error=False),
        stage=Stage.DISABLED,
        phase=Phase.ROLLED_BACK,
    ),
    Case(
        "neither-pause-nor-rollback-only-holds",
        state(),
        DecisionInputs(verdict=FAIL),
        spec=spec(pause_on_error=False),
        failures=1,
        hold=None,
        phase=Phase.PROGRESSING,
    ),
    Case(
        "regression-after-completion-pauses",
        state(stage=Stage.FULL, phase=Phase.COMPLETED),
        DecisionInputs(verdict=FAIL),
        stage=Stage.FULL,
        phase=Phase.PAUSED,
        hold=Hold.ANALYSIS_FAILED,
    ),
    Case(
        "regression-after-completion-rolls-back",
        state(stage=Stage.FULL, phase=Phase.COMPLETED),
        DecisionInputs(verdict=FAIL),
        spec=spec(rollback_on_error=True),
        stage=Stage.DISABLED,
        phase=Phase.ROLLED_BACK,
    ),
    Case(
        "fail-while-spec-paused-rolls-back",
        state(phase=Phase.PAUSED),
        DecisionInputs(verdict=FAIL),
        spec=spec(paused=True, rollback_on_error=True),
        stage=Stage.DISABLED,
        phase=Phase.ROLLED_BACK,
    ),
    Case(
        "fail-while-spec-paused-remembers-analysis-pause",
        state(phase=Phase.PAUSED),
        DecisionInputs(verdict=FAIL),
        spec=spec(paused=True),
        phase=Phase.PAUSED,
        hold=Hold.ANALYSIS_FAILED,
    ),
    # --- Error -----------------------------------------------------------
    Case(
        "error-below-limit-holds",
        state(consecutive_errors=2),
        DecisionInputs(verdict=ERROR),
        errors=3,
        hold=None,
    ),
    Case(
        "errors-reach-limit-pause-prometheus-unavailable",
        state(consecutive_errors=3),
        DecisionInputs(verdict=ERROR, analysis_message="connection refused"),
        errors=4,
        phase=Phase.PAUSED,
        hold=Hold.PROMETHEUS_UNAVAILABLE,
        event_reasons=("Paused",),
        message_contains="PrometheusUnavailable",
    ),
    Case(
        "error-keeps-fail-streak",
        state(consecutive_failures=1),
        DecisionInputs(verdict=ERROR),
        spec=spec(failure_limit=2),
        failures=1,
        errors=1,
    ),
    Case(
        "fail-resets-errors",
        state(consecutive_errors=3),
        DecisionInputs(verdict=FAIL),
        spec=spec(failure_limit=2),
        failures=1,
        errors=0,
    ),
    Case(
        "errors-never-change-stage",
        state(consecutive_errors=10, hold=Hold.PROMETHEUS_UNAVAILABLE, phase=Phase.PAUSED),
        DecisionInputs(verdict=ERROR),
        phase=Phase.PAUSED,
        errors=11,
        event_reasons=(),
    ),
    # --- declarative pause -------------------------------------------------
    Case(
        "spec-paused-pauses",
        state(),
        DecisionInputs(verdict=PASS),
        spec=spec(paused=True),
        phase=Phase.PAUSED,
        hold=None,
        event_reasons=("Paused",),
        message_contains="paused by spec.paused",
    ),
    Case(
        "spec-unpaused-resumes",
        state(phase=Phase.PAUSED),
        DecisionInputs(verdict=PASS),
        stage=Stage.EARLY_ACCESS,
        event_reasons=("StageAdvanced", "Resumed"),
    ),
    Case(
        "spec-unpaused-keeps-sticky-hold",
        state(phase=Phase.PAUSED, hold=Hold.ANALYSIS_FAILED),
        DecisionInputs(verdict=PASS),
        phase=Phase.PAUSED,
        hold=Hold.ANALYSIS_FAILED,
    ),
    # --- targetStage lowered -------------------------------------------------
    Case(
        "lowered-target-steps-back",
        state(stage=Stage.LIMITED),
        DecisionInputs(),
        spec=spec(target_stage=Stage.BETA),
        stage=Stage.BETA,
        phase=Phase.COMPLETED,
        transition_reasons=("TargetLowered",),
        event_reasons=("SteppedBack", "Completed"),
    ),
    Case(
        "lowered-target-steps-back-while-paused",
        state(stage=Stage.LIMITED, phase=Phase.PAUSED, hold=Hold.MANUAL_PAUSE),
        DecisionInputs(),
        spec=spec(target_stage=Stage.INTERNAL),
        stage=Stage.INTERNAL,
        phase=Phase.PAUSED,
        hold=Hold.MANUAL_PAUSE,
    ),
    Case(
        "lowered-target-to-disabled-is-completed-off",
        state(stage=Stage.BETA),
        DecisionInputs(),
        spec=spec(target_stage=Stage.DISABLED),
        stage=Stage.DISABLED,
        phase=Phase.COMPLETED,
    ),
    # --- new spec generation ---------------------------------------------
    Case(
        "new-generation-clears-rollback",
        state(stage=Stage.DISABLED, phase=Phase.ROLLED_BACK, hold=Hold.MANUAL_ROLLBACK),
        DecisionInputs(),
        spec=spec(generation=2),
        stage=Stage.INTERNAL,
        transition_reasons=("Validated",),
        event_reasons=("SpecChanged", "StageAdvanced"),
    ),
    Case(
        "new-generation-lifts-analysis-pause-and-counters",
        state(phase=Phase.PAUSED, hold=Hold.ANALYSIS_FAILED, consecutive_failures=3),
        DecisionInputs(),
        spec=spec(generation=2),
        now=FRESH,
        hold=None,
        failures=0,
        errors=0,
    ),
    Case(
        "new-generation-keeps-manual-pause",
        state(phase=Phase.PAUSED, hold=Hold.MANUAL_PAUSE, consecutive_errors=2),
        DecisionInputs(),
        spec=spec(generation=2),
        phase=Phase.PAUSED,
        hold=Hold.MANUAL_PAUSE,
        errors=0,
    ),
    Case(
        "new-generation-keeps-stage-and-bake",
        state(stage=Stage.LIMITED),
        DecisionInputs(verdict=PASS),
        spec=spec(generation=7),
        stage=Stage.GENERAL,
    ),
    Case(
        "new-generation-fail-pauses-again",
        state(phase=Phase.PAUSED, hold=Hold.ANALYSIS_FAILED, consecutive_failures=1),
        DecisionInputs(verdict=FAIL),
        spec=spec(generation=2),
        phase=Phase.PAUSED,
        hold=Hold.ANALYSIS_FAILED,
        failures=1,
    ),
    # --- actions ---------------------------------------------------------
    Case(
        "advance-action-on-pass-ignores-bake",
        state(),
        DecisionInputs(verdict=PASS, action=action(ActionVerb.ADVANCE)),
        spec=spec(auto_advance=False),
        now=FRESH,
        stage=Stage.EARLY_ACCESS,
        transition_reasons=("ManualAdvance",),
        action_result=ActionResult.SUCCEEDED,
    ),
    Case(
        "advance-action-uses-stored-pass-in-stage",
        state(last_verdict=PASS, last_analysis_at=FRESH),
        DecisionInputs(action=action(ActionVerb.ADVANCE)),
        spec=spec(auto_advance=False),
        stage=Stage.EARLY_ACCESS,
        action_result=ActionResult.SUCCEEDED,
    ),
    Case(
        "advance-action-rejects-pass-from-previous-stage",
        state(last_verdict=PASS, last_analysis_at=T0 - timedelta(seconds=1)),
        DecisionInputs(action=action(ActionVerb.ADVANCE)),
        spec=spec(auto_advance=False),
        stage=Stage.BETA,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "advance-action-rejected-on-inconclusive",
        state(),
        DecisionInputs(verdict=INCONCLUSIVE, samples=5, action=action(ActionVerb.ADVANCE)),
        stage=Stage.BETA,
        action_result=ActionResult.REJECTED,
        event_reasons=("ActionRejected",),
    ),
    Case(
        "forced-advance-without-pass",
        state(),
        DecisionInputs(verdict=INCONCLUSIVE, action=action(ActionVerb.ADVANCE, force=True)),
        now=FRESH,
        stage=Stage.EARLY_ACCESS,
        transition_reasons=("ForcedAdvance",),
        action_result=ActionResult.SUCCEEDED,
    ),
    Case(
        "forced-advance-from-disabled-without-probe",
        state(stage=Stage.DISABLED),
        DecisionInputs(probe=ProbeOutcome.FAILED, action=action(ActionVerb.ADVANCE, force=True)),
        spec=spec(probe_configured=True),
        stage=Stage.INTERNAL,
        action_result=ActionResult.SUCCEEDED,
    ),
    Case(
        "advance-action-then-no-second-auto-advance",
        state(),
        DecisionInputs(verdict=PASS, action=action(ActionVerb.ADVANCE)),
        stage=Stage.EARLY_ACCESS,
        transition_reasons=("ManualAdvance",),
    ),
    Case(
        "advance-action-rejected-at-target",
        state(stage=Stage.FULL, phase=Phase.COMPLETED),
        DecisionInputs(verdict=PASS, action=action(ActionVerb.ADVANCE, force=True)),
        stage=Stage.FULL,
        phase=Phase.COMPLETED,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "advance-action-rejected-while-paused",
        state(phase=Phase.PAUSED, hold=Hold.MANUAL_PAUSE),
        DecisionInputs(verdict=PASS, action=action(ActionVerb.ADVANCE, force=True)),
        phase=Phase.PAUSED,
        hold=Hold.MANUAL_PAUSE,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "forced-advance-cannot-slip-past-failing-verdict",
        state(),
        DecisionInputs(verdict=FAIL, action=action(ActionVerb.ADVANCE, force=True)),
        phase=Phase.PAUSED,
        hold=Hold.ANALYSIS_FAILED,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "advance-action-rejected-while-pending",
        state(stage=None, stage_started_at=None, phase=Phase.PENDING, validated=False),
        DecisionInputs(action=action(ActionVerb.ADVANCE, force=True)),
        stage=None,
        phase=Phase.PENDING,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "advance-action-rejected-while-degraded",
        state(),
        DecisionInputs(degraded_reason="bad query", action=action(ActionVerb.ADVANCE, force=True)),
        phase=Phase.DEGRADED,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "pause-action",
        state(),
        DecisionInputs(verdict=PASS, action=action(ActionVerb.PAUSE, reason="incident 42")),
        phase=Phase.PAUSED,
        hold=Hold.MANUAL_PAUSE,
        action_result=ActionResult.SUCCEEDED,
        event_reasons=("Paused", "ActionSucceeded"),
    ),
    Case(
        "pause-action-replaces-analysis-pause",
        state(phase=Phase.PAUSED, hold=Hold.ANALYSIS_FAILED),
        DecisionInputs(action=action(ActionVerb.PAUSE)),
        phase=Phase.PAUSED,
        hold=Hold.MANUAL_PAUSE,
        action_result=ActionResult.SUCCEEDED,
    ),
    Case(
        "resume-action-clears-hold-and-counters",
        state(
            phase=Phase.PAUSED,
            hold=Hold.ANALYSIS_FAILED,
            consecutive_failures=1,
            consecutive_errors=2,
        ),
        DecisionInputs(action=action(ActionVerb.RESUME)),
        hold=None,
        failures=0,
        errors=0,
        action_result=ActionResult.SUCCEEDED,
        event_reasons=("Resumed", "ActionSucceeded"),
    ),
    Case(
        "resume-then-pass-advances",
        state(phase=Phase.PAUSED, hold=Hold.PROMETHEUS_UNAVAILABLE, consecutive_errors=4),
        DecisionInputs(verdict=PASS, action=action(ActionVerb.RESUME)),
        stage=Stage.EARLY_ACCESS,
        action_result=ActionResult.SUCCEEDED,
    ),
    Case(
        "resume-action-rejected-when-spec-paused",
        state(phase=Phase.PAUSED),
        DecisionInputs(action=action(ActionVerb.RESUME)),
        spec=spec(paused=True),
        phase=Phase.PAUSED,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "resume-action-rejected-when-not-paused",
        state(),
        DecisionInputs(action=action(ActionVerb.RESUME)),
        now=FRESH,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "rollback-action",
        state(stage=Stage.GENERAL, consecutive_failures=0),
        DecisionInputs(action=action(ActionVerb.ROLLBACK, reason="bad deploy")),
        stage=Stage.DISABLED,
        phase=Phase.ROLLED_BACK,
        hold=Hold.MANUAL_ROLLBACK,
        transition_reasons=("ManualRollback",),
        action_result=ActionResult.SUCCEEDED,
        event_reasons=("RolledBack", "ActionSucceeded"),
    ),
    Case(
        "rolled-back-stays-disabled-on-pass",
        state(stage=Stage.DISABLED, phase=Phase.ROLLED_BACK, hold=Hold.MANUAL_ROLLBACK),
        DecisionInputs(verdict=PASS, probe=ProbeOutcome.PASSED),
        stage=Stage.DISABLED,
        phase=Phase.ROLLED_BACK,
        hold=Hold.MANUAL_ROLLBACK,
        message_contains="retry",
    ),
    Case(
        "rollback-action-while-pending-turns-flag-off",
        state(stage=None, stage_started_at=None, phase=Phase.PENDING, validated=False),
        DecisionInputs(action=action(ActionVerb.ROLLBACK)),
        stage=Stage.DISABLED,
        phase=Phase.ROLLED_BACK,
        action_result=ActionResult.SUCCEEDED,
    ),
    Case(
        "retry-climbs-again-from-disabled",
        state(stage=Stage.DISABLED, phase=Phase.ROLLED_BACK, hold=Hold.ROLLED_BACK_ON_FAILURE),
        DecisionInputs(action=action(ActionVerb.RETRY)),
        stage=Stage.INTERNAL,
        hold=None,
        transition_reasons=("Validated",),
        action_result=ActionResult.SUCCEEDED,
    ),
    Case(
        "retry-cannot-undo-this-rounds-rollback",
        state(stage=Stage.INTERNAL),
        DecisionInputs(verdict=FAIL, action=action(ActionVerb.RETRY)),
        spec=spec(rollback_on_error=True),
        stage=Stage.DISABLED,
        phase=Phase.ROLLED_BACK,
        hold=Hold.ROLLED_BACK_ON_FAILURE,
        action_result=ActionResult.REJECTED,
        message_contains="rolled back",
    ),
    Case(
        "resume-cannot-undo-this-rounds-pause",
        state(),
        DecisionInputs(verdict=FAIL, action=action(ActionVerb.RESUME)),
        phase=Phase.PAUSED,
        hold=Hold.ANALYSIS_FAILED,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "retry-rejected-when-not-rolled-back",
        state(),
        DecisionInputs(action=action(ActionVerb.RETRY)),
        now=FRESH,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "pause-rejected-when-rolled-back",
        state(stage=Stage.DISABLED, phase=Phase.ROLLED_BACK, hold=Hold.MANUAL_ROLLBACK),
        DecisionInputs(action=action(ActionVerb.PAUSE)),
        stage=Stage.DISABLED,
        phase=Phase.ROLLED_BACK,
        action_result=ActionResult.REJECTED,
    ),
    Case(
        "check-action-records",
        state(),
        DecisionInputs(verdict=INCONCLUSIVE, samples=1, action=action(ActionVerb.CHECK)),
        action_result=ActionResult.SUCCEEDED,
    ),
    Case(
        "same-action-id-performed-once",
        state(
            last_action=LastAction("rollback", "a1", T0, ActionResult.SUCCEEDED),
            stage=Stage.DISABLED,
            phase=Phase.ROLLED_BACK,
            hold=Hold.MANUAL_ROLLBACK,
        ),
        DecisionInputs(action=action(ActionVerb.RETRY, id_="a1")),
        stage=Stage.DISABLED,
        phase=Phase.ROLLED_BACK,
        event_reasons=(),
    ),
]


def _run(case: Case) -> Decision:
    return decide(case.spec, case.state, case.inputs, case.now)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_rule(case: Case) -> None:
    decision = _run(case)
    got = decision.state
    assert got.stage == case.stage
    assert got.phase == case.phase, decision.message
    if case.hold is not None or case.phase in (Phase.PROGRESSING, Phase.COMPLETED):
        assert got.hold == case.hold
    if case.failures is not None:
        assert got.consecutive_failures == case.failures
    if case.errors is not None:
        assert got.consecutive_errors == case.errors
    if case.transition_reasons is not None:
        assert tuple(t.reason for t in decision.transitions) == case.transition_reasons
    elif case.stage == case.state.stage:
        assert not decision.transitions
    if case.event_reasons is not None:
        assert tuple(e.reason for e in decision.events) == case.event_reasons
    if case.action_result is not None:
        assert got.last_action is not None
        assert got.last_action.id == case.inputs.action.id  # type: ignore[union-attr]
        assert got.last_action.result == case.action_result
        assert got.last_action.at == case.now
    assert case.message_contains in decision.message
    assert decision.message == decision.message.strip()


def test_every_rule_is_documented() -> None:
    """docs/decisions.md names each case id, so the table and the code cannot drift."""
    from pathlib import Path

    doc = (Path(__file__).parents[3] / "docs" / "decisions.md").read_text()
    missing = [c.id for c in CASES if f"`{c.id}`" not in doc]
    assert not missing


def test_stage_change_restarts_bake_clock() -> None:
    decision = decide(spec(), state(), DecisionInputs(verdict=PASS), BAKED)
    assert decision.state.stage_started_at == BAKED
    # The next Pass right away is too early for the new stage.
    again = decide(
        spec(), decision.state, DecisionInputs(verdict=PASS), BAKED + timedelta(seconds=1)
    )
    assert again.state.stage == Stage.EARLY_ACCESS
    assert not again.transitions


def test_holding_keeps_bake_clock() -> None:
    decision = decide(spec(), state(), DecisionInputs(verdict=INCONCLUSIVE), FRESH)
    assert decision.state.stage_started_at == T0


def test_verdict_recorded_with_time() -> None:
    decision = decide(spec(), state(), DecisionInputs(verdict=ERROR), FRESH)
    assert decision.state.last_verdict is Verdict.ERROR
    assert decision.state.last_analysis_at == FRESH
    untouched = decide(spec(), decision.state, DecisionInputs(), BAKED)
    assert untouched.state.last_analysis_at == FRESH


def test_rejection_says_why() -> None:
    decision = decide(
        spec(),
        state(),
        DecisionInputs(verdict=FAIL, action=action(ActionVerb.ADVANCE)),
        BAKED,
    )
    assert decision.state.last_action is not None
    assert "paused (AnalysisFailed); resume first" in decision.state.last_action.message


def test_rejected_advance_mentions_force() -> None:
    decision = decide(
        spec(),
        state(),
        DecisionInputs(verdict=INCONCLUSIVE, action=action(ActionVerb.ADVANCE)),
        BAKED,
    )
    assert decision.state.last_action is not None
    assert "is Inconclusive, not Pass; use advance:force" in decision.state.last_action.message


def test_decide_is_pure() -> None:
    before = state(consecutive_failures=0)
    inputs = DecisionInputs(verdict=FAIL)
    first = decide(spec(), before, inputs, BAKED)
    second = decide(spec(), before, inputs, BAKED)
    assert first == second
    assert before == state(consecutive_failures=0)


def test_observed_generation_follows_spec() -> None:
    decision = decide(spec(generation=5), state(), DecisionInputs(), FRESH)
    assert decision.state.observed_generation == 5
    first = decide(
        spec(generation=1), replace(state(), observed_generation=None), DecisionInputs(), FRESH
    )
    assert not any(e.reason == "SpecChanged" for e in first.events)
