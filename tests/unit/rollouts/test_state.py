"""Rollout.status <-> the decision's state: what is written, and that it reads back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from flagops.api.actions import Action, ActionVerb
from flagops.api.common import ConditionStatus, get_condition
from flagops.api.rollout import (
    HEALTH_HISTORY_LIMIT,
    ActionResult,
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
from flagops.rollouts.decide import decide
from flagops.rollouts.model import (
    Decision,
    DecisionInputs,
    DecisionSpec,
    Event,
    EventType,
    FlagSnapshot,
    Hold,
    ProbeOutcome,
    Publication,
    RolloutState,
)
from flagops.rollouts.state import (
    apply_to_status,
    decision_spec,
    event_name,
    probe_outcome,
    publication,
    record_events,
    record_probe,
    state_from_status,
    without_posted,
)

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
OFF = FlagSnapshot(enabled=False, rollout_percent=0)


def stored(status: RolloutStatus) -> RolloutStatus:
    """As the apiserver keeps it: JSON, read back."""
    return RolloutStatus.model_validate(status.to_api())


def step(
    status: RolloutStatus, spec: DecisionSpec, inputs: DecisionInputs, now: datetime
) -> tuple[RolloutStatus, Decision]:
    decision = decide(spec, state_from_status(status), inputs, now)
    return stored(apply_to_status(status, decision, inputs, spec, now)), decision


def test_decision_spec_from_rollout_spec() -> None:
    spec = RolloutSpec.model_validate(
        {
            "flagRef": {"name": "f"},
            "targetStage": "LIMITED",
            "paused": True,
            "autoAdvance": False,
            "stageDuration": "90s",
            "analysis": {
                "minSampleSize": 7,
                "failureLimit": 2,
                "consecutiveErrorLimit": 3,
                "pauseOnError": False,
                "rollbackOnError": True,
            },
            "healthProbe": {"integration": "calendar_sync"},
        }
    )
    assert decision_spec(spec, generation=4) == DecisionSpec(
        generation=4,
        target_stage=Stage.LIMITED,
        paused=True,
        auto_advance=False,
        stage_duration=timedelta(seconds=90),
        min_sample_size=7,
        failure_limit=2,
        consecutive_error_limit=3,
        pause_on_error=False,
        rollback_on_error=True,
        probe_configured=True,
    )


def test_empty_status_is_a_new_rollout() -> None:
    assert state_from_status(RolloutStatus()) == RolloutState()


def test_first_round_writes_adoption_and_conditions() -> None:
    spec = DecisionSpec(generation=3)
    status, _ = step(
        RolloutStatus(),
        spec,
        DecisionInputs(validated=True, flag=FlagSnapshot(True, 25)),
        NOW,
    )
    assert status.stage is Stage.EARLY_ACCESS
    assert status.current_percent == 25
    assert status.phase is Phase.PROGRESSING
    assert status.stage_started_at == NOW
    assert status.adopted_at == NOW
    assert status.observed_generation == 3
    validated = get_condition(status.conditions, RolloutCondition.VALIDATED)
    assert validated is not None
    assert validated.status is ConditionStatus.TRUE
    progressing = get_condition(status.conditions, RolloutCondition.PROGRESSING)
    assert progressing is not None
    assert progressing.status is ConditionStatus.TRUE
    assert progressing.message == status.message
    assert state_from_status(status).validated


def test_analysis_recorded_in_status_and_history() -> None:
    spec = DecisionSpec(generation=1)
    status, _ = step(RolloutStatus(), spec, DecisionInputs(validated=True, flag=OFF), NOW)
    inputs = DecisionInputs(
        verdict=Verdict.FAIL, error_rate=0.2, samples=300, analysis_message="error rate 20%"
    )
    status, _ = step(status, spec, inputs, NOW + timedelta(minutes=1))
    assert status.last_analysis is not None
    assert status.last_analysis.verdict is Verdict.FAIL
    assert status.last_analysis.error_rate == 0.2
    assert status.last_analysis.samples == 300
    assert status.health_history[0].source is HealthSource.ANALYSIS
    assert status.health_history[0].stage is Stage.INTERNAL
    healthy = get_condition(status.conditions, RolloutCondition.HEALTHY)
    assert healthy is not None
    assert healthy.status is ConditionStatus.FALSE
    assert healthy.reason == "AnalysisFailed"
    assert status.phase is Phase.PAUSED
    assert status.pause_reason == "AnalysisFailed"


def test_history_is_capped() -> None:
    spec = DecisionSpec(generation=1)
    status, _ = step(RolloutStatus(), spec, DecisionInputs(validated=True, flag=OFF), NOW)
    for minute in range(HEALTH_HISTORY_LIMIT + 5):
        verdict = Verdict.INCONCLUSIVE if minute % 2 else Verdict.ERROR
        status, _ = step(
            status,
            spec,
            DecisionInputs(verdict=verdict, samples=minute),
            NOW + timedelta(minutes=minute),
        )
    assert len(status.health_history) == HEALTH_HISTORY_LIMIT
    assert status.health_history[0].samples == HEALTH_HISTORY_LIMIT + 4


def test_history_records_changes_of_health_not_every_analysis() -> None:
    spec = DecisionSpec(generation=1)
    status, _ = step(RolloutStatus(), spec, DecisionInputs(validated=True, flag=OFF), NOW)
    verdicts = [Verdict.INCONCLUSIVE] * 5 + [Verdict.ERROR] * 3 + [Verdict.INCONCLUSIVE] * 4
    for minute, verdict in enumerate(verdicts):
        status, _ = step(
            status,
            spec,
            DecisionInputs(verdict=verdict, samples=minute),
            NOW + timedelta(minutes=minute),
        )
    history = [(h.verdict, h.samples) for h in status.health_history]
    # The first analysis of each run of verdicts, newest first; lastAnalysis is the newest.
    assert history == [(Verdict.INCONCLUSIVE, 8), (Verdict.ERROR, 5), (Verdict.INCONCLUSIVE, 0)]
    assert status.last_analysis is not None and status.last_analysis.samples == 11


@pytest.mark.parametrize(
    ("hold", "reason", "rolled_back"),
    [
        (Hold.MANUAL_PAUSE, "Manual", False),
        (Hold.ANALYSIS_FAILED, "AnalysisFailed", False),
        (Hold.PROMETHEUS_UNAVAILABLE, "PrometheusUnavailable", False),
        (Hold.MANUAL_ROLLBACK, "Manual", True),
        (Hold.ROLLED_BACK_ON_FAILURE, "AnalysisFailed", True),
    ],
)
def test_every_hold_round_trips(hold: Hold, reason: str, rolled_back: bool) -> None:
    spec = DecisionSpec(generation=5)
    state = RolloutState(
        stage=Stage.DISABLED if rolled_back else Stage.BETA,
        stage_started_at=NOW,
        phase=Phase.ROLLED_BACK if rolled_back else Phase.PAUSED,
        hold=hold,
        validated=True,
        observed_generation=5,
    )
    decision = decide(spec, state, DecisionInputs(), NOW)
    status = stored(apply_to_status(RolloutStatus(), decision, DecisionInputs(), spec, NOW))
    assert status.pause_reason == reason
    assert (status.rolled_back_generation == 5) is rolled_back
    assert state_from_status(status).hold is hold


def test_spec_pause_is_shown_but_not_remembered() -> None:
    spec = DecisionSpec(generation=1, paused=True)
    status, _ = step(RolloutStatus(), spec, DecisionInputs(validated=True, flag=OFF), NOW)
    assert status.phase is Phase.PAUSED
    assert status.pause_reason == "SpecPaused"
    assert state_from_status(status).hold is None
    status, _ = step(status, DecisionSpec(generation=2), DecisionInputs(), NOW)
    assert status.pause_reason is None
    assert status.phase is Phase.PROGRESSING


def test_rollback_generation_kept_until_retry() -> None:
    spec = DecisionSpec(generation=2)
    status, _ = step(RolloutStatus(), spec, DecisionInputs(validated=True, flag=OFF), NOW)
    rollback = DecisionInputs(action=Action(ActionVerb.ROLLBACK, "r1", reason="incident"))
    status, _ = step(status, spec, rollback, NOW)
    assert status.rolled_back_generation == 2
    assert status.last_action is not None
    assert status.last_action.result is ActionResult.SUCCEEDED
    assert status.last_action.reason == "incident"
    status, _ = step(status, spec, DecisionInputs(), NOW + timedelta(minutes=1))
    assert status.rolled_back_generation == 2
    retry = DecisionInputs(action=Action(ActionVerb.RETRY, "r2"))
    status, _ = step(status, spec, retry, NOW + timedelta(minutes=2))
    assert status.rolled_back_generation is None
    assert status.stage is Stage.INTERNAL


def test_rejected_action_recorded_with_message() -> None:
    spec = DecisionSpec(generation=1)
    status, _ = step(RolloutStatus(), spec, DecisionInputs(validated=True, flag=OFF), NOW)
    status, _ = step(status, spec, DecisionInputs(action=Action(ActionVerb.RESUME, "x")), NOW)
    assert status.last_action is not None
    assert status.last_action.result is ActionResult.REJECTED
    assert status.last_action.message == "not paused"
    assert status.last_action.at == NOW


def test_degraded_written_with_validation_condition() -> None:
    spec = DecisionSpec(generation=1)
    status, _ = step(
        RolloutStatus(),
        spec,
        DecisionInputs(validated=False, degraded_reason="FeatureFlag calendar-sync not found"),
        NOW,
    )
    assert status.phase is Phase.DEGRADED
    validated = get_condition(status.conditions, RolloutCondition.VALIDATED)
    assert validated is not None
    assert validated.status is ConditionStatus.FALSE
    assert validated.message == "FeatureFlag calendar-sync not found"
    assert status.stage is None
    assert status.current_percent is None


def test_probe_outcome_and_record() -> None:
    status = RolloutStatus()
    assert probe_outcome(status) is ProbeOutcome.NONE
    status = status.model_copy(update={"active_probe_job": "flagops-probe-1-1"})
    assert probe_outcome(status) is ProbeOutcome.RUNNING
    record = ProbeRecord(
        job="flagops-probe-1-1", time=NOW, result=ProbeResult.FAILED, message="401"
    )
    status = record_probe(status, record, Stage.BETA)
    assert probe_outcome(status) is ProbeOutcome.FAILED
    assert status.active_probe_job is None
    assert status.last_probe == record
    entry = status.health_history[0]
    assert entry.source is HealthSource.PROBE
    assert entry.verdict is Verdict.FAIL
    assert entry.job == "flagops-probe-1-1"
    passed = record.model_copy(update={"result": ProbeResult.SUCCEEDED})
    assert probe_outcome(record_probe(status, passed, Stage.BETA)) is ProbeOutcome.PASSED


def test_restart_mid_rollout_continues_exactly() -> None:
    """Two operators: one keeps its state in memory, one re-reads status each round."""
    spec = DecisionSpec(generation=1, stage_duration=timedelta(minutes=5))
    inputs_by_round = [
        DecisionInputs(validated=True, flag=FlagSnapshot(False, 0)),
        DecisionInputs(verdict=Verdict.INCONCLUSIVE, samples=10),
        DecisionInputs(verdict=Verdict.PASS, samples=500, error_rate=0.0),
        DecisionInputs(verdict=Verdict.ERROR),
        DecisionInputs(verdict=Verdict.PASS, action=Action(ActionVerb.ADVANCE, "a")),
        DecisionInputs(verdict=Verdict.FAIL),
        DecisionInputs(action=Action(ActionVerb.RESUME, "b")),
        DecisionInputs(verdict=Verdict.PASS),
    ]
    memory = RolloutState()
    status = RolloutStatus()
    for minute, inputs in enumerate(inputs_by_round):
        now = NOW + timedelta(minutes=6 * minute)
        if memory.stage is not None:
            # The publisher put the current stage out half a minute after the last round.
            since = now - timedelta(minutes=5, seconds=30)
            inputs = replace(inputs, published=Publication(memory.stage, since))
        memory = decide(spec, memory, inputs, now).state
        status, decision = step(status, spec, inputs, now)
        assert decision.state == memory
    assert memory.stage is Stage.LIMITED


def test_events_are_numbered_into_pending_and_survive_a_round_trip() -> None:
    status = record_events(
        RolloutStatus(event_sequence=4),
        [
            Event(EventType.NORMAL, "StageAdvanced", "BETA -> EARLY_ACCESS"),
            Event(EventType.WARNING, "ProbeFailed", "x" * 5000),
        ],
        NOW,
    )
    assert status.event_sequence == 6
    assert [(e.sequence, e.reason) for e in status.pending_events] == [
        (5, "StageAdvanced"),
        (6, "ProbeFailed"),
    ]
    assert len(status.pending_events[1].message) == 1024
    stored = RolloutStatus.model_validate(status.to_api())
    assert stored.pending_events == status.pending_events
    assert [e.sequence for e in without_posted(stored, {5}).pending_events] == [6]
    assert without_posted(stored, {9}) is stored
    assert record_events(stored, [], NOW) is stored


def test_pending_events_are_bounded_oldest_dropped() -> None:
    status = RolloutStatus()
    for _ in range(30):
        status = record_events(status, [Event(EventType.NORMAL, "Paused", "p")], NOW)
    assert status.event_sequence == 30
    assert [e.sequence for e in status.pending_events] == list(range(11, 31))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("calendar-sync", "calendar-sync.0123abcd.7"),
        ("a" * 253, "a" * (253 - len(".0123abcd.7")) + ".0123abcd.7"),
        ("a" * 241 + "-" + "b" * 20, "a" * 241 + ".0123abcd.7"),
    ],
)
def test_event_name_is_fixed_and_valid(name: str, expected: str) -> None:
    assert event_name(name, "0123abcd-ffff-eeee", 7) == expected
    assert len(expected) <= 253


def test_publication_reads_the_publishers_record() -> None:
    status = {
        "effective": {"stage": "BETA", "source": "rollout/r1", "rolloutPercent": 10},
        "publishedAt": "2026-06-01T08:00:01.250000Z",
    }
    at = datetime(2026, 6, 1, 8, 0, 1, 250000, tzinfo=UTC)
    assert publication(status, "rollout/r1") == Publication(Stage.BETA, at)
    assert publication(status, "rollout/other") is None
    assert publication({**status, "publishedAt": None}, "rollout/r1") is None
    assert publication({**status, "publishedAt": "yesterday"}, "rollout/r1") is None
    assert publication({**status, "publishedAt": "2026-06-01T08:00:01"}, "rollout/r1") is None
    bad_stage = {**status, "effective": {"stage": "HALF", "source": "rollout/r1"}}
    assert publication(bad_stage, "rollout/r1") is None
    assert publication({}, "rollout/r1") is None


def test_bake_counts_from_publication_not_from_the_status_write() -> None:
    spec = DecisionSpec(generation=1, stage_duration=timedelta(seconds=4))
    start = RolloutState(
        stage=Stage.BETA,
        stage_started_at=NOW,
        phase=Phase.PROGRESSING,
        validated=True,
        observed_generation=1,
    )
    passing = DecisionInputs(verdict=Verdict.PASS, samples=500, error_rate=0.0)
    # Not published yet: no bake at all, however long since the status write.
    waiting = decide(spec, start, passing, NOW + timedelta(seconds=10))
    assert waiting.state.stage is Stage.BETA
    assert "waiting for the stage to be published" in waiting.message
    # Published 2.7 s after the write: 4 s later than the write is too early.
    published = replace(passing, published=Publication(Stage.BETA, NOW + timedelta(seconds=2.7)))
    early = decide(spec, start, published, NOW + timedelta(seconds=4))
    assert early.state.stage is Stage.BETA
    assert early.state.stage_published_at == NOW + timedelta(seconds=2.7)
    assert "baking 1s of 4s" in early.message
    later = decide(spec, early.state, passing, NOW + timedelta(seconds=6.7))
    assert later.state.stage is Stage.EARLY_ACCESS
    assert later.state.stage_published_at is None
    # A publication of the stage before it began (left and re-entered unpublished)
    # counts from the stage's start.
    stale = replace(passing, published=Publication(Stage.BETA, NOW - timedelta(hours=1)))
    assert decide(spec, start, stale, NOW).state.stage_published_at == NOW
    # Another stage published (the old one still out) starts nothing.
    other = replace(passing, published=Publication(Stage.INTERNAL, NOW + timedelta(seconds=1)))
    assert decide(spec, start, other, NOW + timedelta(seconds=9)).state.stage_published_at is None


def test_zero_stage_duration_still_waits_for_publication() -> None:
    spec = DecisionSpec(generation=1, stage_duration=timedelta(0))
    start = RolloutState(
        stage=Stage.BETA, stage_started_at=NOW, phase=Phase.PROGRESSING, validated=True
    )
    passing = DecisionInputs(verdict=Verdict.PASS, samples=500, error_rate=0.0)
    assert decide(spec, start, passing, NOW + timedelta(hours=1)).state.stage is Stage.BETA
