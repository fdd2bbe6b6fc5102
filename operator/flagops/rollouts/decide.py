"""What a Rollout does next: one pure function, no I/O.

`decide(spec, state, inputs, now)` takes what the operator gathered this round
(the newest analysis verdict, the newest probe, a pending action annotation,
the flag as it is now) and returns the next state plus the Events, stage
transitions and status message that follow from it. Every rule is listed in
docs/decisions.md; the tests in tests/unit/rollouts/ check each one.

Everything in `RolloutState` round-trips through `Rollout.status` (see
rollouts/state.py), so an operator restarted at any moment decides exactly as
the one that stopped would have.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta

from flagops.api.durations import format_duration
from flagops.api.rollout import Phase, Verdict
from flagops.api.stages import Stage, adoption_stage, index, next_stage
from flagops.rollouts.draft import (
    Draft,
    first_stage_missing,
    pause_state,
    validated,
)
from flagops.rollouts.manual import perform_action
from flagops.rollouts.model import (
    ADOPTED,
    ANALYSIS_FAILED,
    ANALYSIS_PASSED,
    TARGET_LOWERED,
    VALIDATED,
    Decision,
    DecisionInputs,
    DecisionSpec,
    EventType,
    Hold,
    RolloutState,
)


def decide(
    spec: DecisionSpec, state: RolloutState, inputs: DecisionInputs, now: datetime
) -> Decision:
    """The next state of a Rollout, and what to tell the world about it."""
    r = Draft(spec=spec, inputs=inputs, now=now, state=state)
    _observe_generation(r)
    r.hold_seen = r.state.hold
    _note_publication(r)
    _record_verdict(r)
    _adopt(r)
    _step_back_to_target(r)
    _apply_safety_limits(r)
    advanced = perform_action(r)
    if not advanced:
        _auto_advance(r)
    phase = _phase(r)
    _phase_events(r, r.state.phase, phase)
    r.state = replace(r.state, phase=phase, validated=validated(r))
    return Decision(
        state=r.state,
        events=tuple(r.events),
        transitions=tuple(r.transitions),
        message=_message(r),
    )


def _phase_events(r: Draft, old: Phase, new: Phase) -> None:
    """Events for phase changes no rule has announced already (pauses by the
    spec, completion, degradation and recovery from it)."""
    if old is new:
        return
    if old is Phase.DEGRADED:
        r.event(EventType.NORMAL, "Recovered", f"no longer degraded; phase {new.value}")
    if new is Phase.DEGRADED:
        r.event(EventType.WARNING, "Degraded", r.inputs.degraded_reason or "degraded")
    elif new is Phase.COMPLETED:
        r.event(EventType.NORMAL, "Completed", f"reached targetStage {r.spec.target_stage.value}")
    elif new is Phase.PAUSED and r.state.hold is None:
        r.event(EventType.NORMAL, "Paused", "paused by spec.paused")
    elif (
        old is Phase.PAUSED
        and new is Phase.PROGRESSING
        and not any(e.reason == "Resumed" for e in r.events)
    ):
        r.event(EventType.NORMAL, "Resumed", "no longer paused")


def _observe_generation(r: Draft) -> None:
    previous = r.state.observed_generation
    if previous == r.spec.generation:
        return
    r.state = replace(r.state, observed_generation=r.spec.generation)
    if previous is None:
        return
    # A new spec may change thresholds, queries or limits: counts taken under
    # the old one no longer mean what they meant, and holds the operator set
    # itself are lifted so the new spec gets a fresh look. A human's pause stays.
    hold = r.state.hold
    r.state = replace(r.state, consecutive_failures=0, consecutive_errors=0)
    if hold is not None and not hold.survives_new_generation:
        r.state = replace(r.state, hold=None)
        r.event(
            EventType.NORMAL,
            "SpecChanged",
            f"new spec generation {r.spec.generation}: lifted {hold.value}",
        )


def _note_publication(r: Draft) -> None:
    """Start the bake clock once the current stage's exposure is published.

    The publication seen may predate this stage's status write only when the
    stage was left and re-entered before the way out was ever published; the
    exposure was then live all along, but the stage itself began at its start.
    """
    published, state = r.inputs.published, r.state
    if (
        state.stage is None
        or state.stage_published_at is not None
        or published is None
        or published.stage is not state.stage
    ):
        return
    since = published.since
    if state.stage_started_at is not None:
        since = max(since, state.stage_started_at)
    r.state = replace(r.state, stage_published_at=since)


def _record_verdict(r: Draft) -> None:
    verdict = r.inputs.verdict
    if verdict is None:
        return
    failures, errors = r.state.consecutive_failures, r.state.consecutive_errors
    if verdict is Verdict.PASS:
        failures, errors = 0, 0
    elif verdict is Verdict.FAIL:
        failures, errors = failures + 1, 0
    elif verdict is Verdict.ERROR:
        # Prometheus said nothing about health, so a run of Fails is not broken.
        errors += 1
    else:
        # Inconclusive: Prometheus answered, but with too little to judge.
        errors = 0
    r.state = replace(
        r.state,
        consecutive_failures=failures,
        consecutive_errors=errors,
        last_verdict=verdict,
        last_analysis_at=r.now,
    )


def _adopt(r: Draft) -> None:
    flag = r.inputs.flag
    # Without the flag's own spec the adoption stage is unknown; guessing
    # DISABLED would switch a live feature off.
    if r.state.stage is not None or r.inputs.degraded_reason or not validated(r) or not flag:
        return
    stage = adoption_stage(flag.enabled, flag.rollout_percent)
    r.move_to(stage, ADOPTED)
    r.event(
        EventType.NORMAL,
        "Adopted",
        f"adopted the flag at {stage.value} (enabled={flag.enabled}, "
        f"rolloutPercent={flag.rollout_percent}); exposure unchanged",
    )


def _step_back_to_target(r: Draft) -> None:
    stage, target = r.state.stage, r.spec.target_stage
    if stage is None or index(stage) <= index(target):
        return
    r.move_to(target, TARGET_LOWERED)
    r.event(
        EventType.NORMAL,
        "SteppedBack",
        f"targetStage lowered to {target.value}: stepped back from {stage.value}",
    )


def _acts_on_health(r: Draft) -> bool:
    """Whether health rules may act: something is exposed and the spec is sound.

    At DISABLED nothing is exposed, and leaving DISABLED already needs a
    passing probe, so a failing probe there only holds the Rollout.
    """
    return (
        r.state.stage is not None
        and r.state.stage is not Stage.DISABLED
        and not r.inputs.degraded_reason
        and not r.state.rolled_back
    )


def _apply_safety_limits(r: Draft) -> None:
    if not _acts_on_health(r):
        return
    s = r.spec
    detail = r.inputs.analysis_message or "analysis failed"
    if r.state.consecutive_failures >= s.failure_limit:
        if s.rollback_on_error:
            stage, failures = r.state.stage, r.state.consecutive_failures
            r.move_to(Stage.DISABLED, ANALYSIS_FAILED, hold=Hold.ROLLED_BACK_ON_FAILURE)
            r.event(
                EventType.WARNING,
                "RolledBack",
                f"{failures} consecutive failed analyses at {stage}: "
                f"rolled back to DISABLED ({detail})",
            )
            return
        if s.pause_on_error:
            if r.state.hold is None:
                r.state = replace(r.state, hold=Hold.ANALYSIS_FAILED)
                r.event(
                    EventType.WARNING,
                    "Paused",
                    f"{r.state.consecutive_failures} consecutive failed analyses at "
                    f"{r.state.stage}: paused ({detail})",
                )
            return
    if r.state.consecutive_errors >= s.consecutive_error_limit and r.state.hold is None:
        r.state = replace(r.state, hold=Hold.PROMETHEUS_UNAVAILABLE)
        r.event(
            EventType.WARNING,
            "Paused",
            f"{r.state.consecutive_errors} consecutive analysis errors: paused "
            f"(PrometheusUnavailable: {r.inputs.analysis_message or 'no answer'})",
        )


def _baked(r: Draft) -> timedelta:
    """Time the stage's exposure has been live: from its publication, not its decision."""
    published = r.state.stage_published_at
    return r.now - published if published is not None else timedelta(0)


def _auto_advance(r: Draft) -> None:
    stage = r.state.stage
    if (
        stage is None
        or r.inputs.degraded_reason
        or pause_state(r) is not None
        or not r.spec.auto_advance
        or index(stage) >= index(r.spec.target_stage)
    ):
        return
    target = next_stage(stage)
    if stage is Stage.DISABLED:
        if first_stage_missing(r) is None:
            r.move_to(target, VALIDATED)
            r.event(EventType.NORMAL, "StageAdvanced", f"DISABLED -> {target.value}: validated")
        return
    published = r.state.stage_published_at is not None
    if r.inputs.verdict is Verdict.PASS and published and _baked(r) >= r.spec.stage_duration:
        r.move_to(target, ANALYSIS_PASSED)
        r.event(
            EventType.NORMAL,
            "StageAdvanced",
            f"{stage.value} -> {target.value}: {r.inputs.analysis_message or 'analysis passed'}",
        )


def _phase(r: Draft) -> Phase:
    if r.inputs.degraded_reason:
        return Phase.DEGRADED
    if r.state.stage is None:
        return Phase.PENDING
    if r.state.rolled_back:
        return Phase.ROLLED_BACK
    if pause_state(r) is not None:
        return Phase.PAUSED
    if r.state.stage is r.spec.target_stage:
        return Phase.COMPLETED
    return Phase.PROGRESSING


def _samples_text(samples: float | None) -> str:
    if samples is None or math.isnan(samples):
        return "0"
    return str(int(samples))


def _message(r: Draft) -> str:
    state, spec, inputs = r.state, r.spec, r.inputs
    phase = state.phase
    stage = state.stage.value if state.stage else ""
    if phase is Phase.DEGRADED:
        return f"degraded: {inputs.degraded_reason}"
    if phase is Phase.PENDING:
        if validated(r) and inputs.flag is None:
            return "validated; waiting for the flag's current state to adopt it"
        # The controller's note says what validation waits for (e.g. Prometheus unreachable).
        return _join("waiting for validation", inputs.analysis_message)
    if phase is Phase.ROLLED_BACK:
        return (
            f"rolled back to DISABLED ({state.hold.value if state.hold else ''}); "
            "use the retry action or change the spec to start again"
        )
    verdict = inputs.verdict
    short_of_samples = inputs.samples is None or not inputs.samples >= spec.min_sample_size
    if verdict is Verdict.INCONCLUSIVE and short_of_samples:
        analysis = f"waiting for samples: {_samples_text(inputs.samples)} of {spec.min_sample_size}"
    elif verdict is not None:
        analysis = f"{verdict.value}: {inputs.analysis_message}".rstrip(": ")
    else:
        analysis = ""
    if phase is Phase.PAUSED:
        why = pause_state(r) or "paused"
        return _join(f"{stage} {why}", analysis)
    if phase is Phase.COMPLETED:
        return _join(f"at targetStage {stage}; analysis continues", analysis)
    if state.stage is Stage.DISABLED:
        missing = first_stage_missing(r)
        if missing:
            return _join(f"DISABLED: {missing}", analysis)
        if not spec.auto_advance:
            return "DISABLED: waiting for an advance action (autoAdvance is off)"
        return "DISABLED: ready for INTERNAL"
    baked = _baked(r)
    if verdict is Verdict.PASS and not spec.auto_advance:
        return _join(f"{stage}", analysis, "waiting for an advance action (autoAdvance is off)")
    if state.stage_published_at is None:
        return _join(f"{stage}", analysis, "waiting for the stage to be published")
    if baked < spec.stage_duration:
        bake = (
            f"baking {format_duration(baked, whole_seconds=True)}"
            f" of {format_duration(spec.stage_duration, whole_seconds=True)}"
        )
        return _join(f"{stage}", analysis, bake)
    return _join(f"{stage}", analysis or "waiting for analysis")


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
