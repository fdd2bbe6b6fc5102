"""Manual actions (DESIGN "Manual actions"): each verb's rule, performed once per id."""

from __future__ import annotations

from dataclasses import replace

from flagops.api.actions import Action, ActionVerb
from flagops.api.rollout import ActionResult, Verdict
from flagops.api.stages import Stage, index, next_stage
from flagops.rollouts.draft import (
    Draft,
    first_stage_missing,
    fresh_hold,
    newest_verdict_in_stage,
    pause_state,
)
from flagops.rollouts.model import (
    FORCED_ADVANCE,
    MANUAL_ADVANCE,
    MANUAL_ROLLBACK,
    EventType,
    Hold,
    LastAction,
)


def perform_action(r: Draft) -> bool:
    """Carry out a new action annotation once; True when it moved the stage."""
    action = r.inputs.action
    if action is None:
        return False
    last = r.state.last_action
    if last is not None and last.id == action.id:
        return False
    before = r.state.stage
    rejection = _ACTIONS[action.verb](r, action)
    label = f"{action.verb.value}{':force' if action.force else ''}@{action.id}"
    why = f" ({action.reason})" if action.reason else ""
    if rejection is None:
        result, message = ActionResult.SUCCEEDED, f"{label}{why}: succeeded"
        r.event(EventType.NORMAL, "ActionSucceeded", message)
    else:
        result, message = ActionResult.REJECTED, rejection
        r.event(EventType.WARNING, "ActionRejected", f"{label}{why}: rejected: {rejection}")
    r.state = replace(
        r.state,
        last_action=LastAction(
            name=action.verb.value,
            id=action.id,
            at=r.now,
            result=result,
            reason=action.reason,
            message=message,
        ),
    )
    return r.state.stage != before


def _action_advance(r: Draft, action: Action) -> str | None:
    stage = r.state.stage
    if r.inputs.degraded_reason:
        return f"rollout is Degraded: {r.inputs.degraded_reason}"
    if stage is None:
        return "not validated yet"
    blocked = pause_state(r)
    if blocked:
        return f"{blocked}; resume first" if not r.state.rolled_back else blocked
    if index(stage) >= index(r.spec.target_stage):
        return f"already at targetStage {r.spec.target_stage.value}"
    if not action.force:
        if stage is Stage.DISABLED:
            missing = first_stage_missing(r)
            if missing:
                return f"{missing}; use advance:force to override"
        else:
            verdict = newest_verdict_in_stage(r)
            if verdict is not Verdict.PASS:
                seen = verdict.value if verdict else "none yet"
                return (
                    f"newest analysis in {stage.value} is {seen}, not Pass; "
                    "use advance:force to override"
                )
    target = next_stage(stage)
    r.move_to(target, FORCED_ADVANCE if action.force else MANUAL_ADVANCE)
    r.event(
        EventType.NORMAL,
        "StageAdvanced",
        f"{stage.value} -> {target.value} by {'forced ' if action.force else ''}advance action",
    )
    return None


def _action_pause(r: Draft, action: Action) -> str | None:
    if r.state.rolled_back:
        return "rolled back; nothing to pause"
    if r.state.hold is not Hold.MANUAL_PAUSE:
        # A human's pause replaces an automatic one, so a later spec change
        # (which lifts automatic holds) does not undo what they asked for.
        r.state = replace(r.state, hold=Hold.MANUAL_PAUSE)
        r.event(EventType.NORMAL, "Paused", f"paused by action{_reason_suffix(action)}")
    return None


def _action_resume(r: Draft, action: Action) -> str | None:
    hold = r.state.hold
    fresh = fresh_hold(r)
    if fresh:
        return fresh
    if hold is not None and hold.is_rollback:
        return "rolled back; use retry"
    if hold is None:
        if r.spec.paused:
            return "paused by spec.paused; set spec.paused to false in Git"
        return "not paused"
    r.state = replace(r.state, hold=None, consecutive_failures=0, consecutive_errors=0)
    still = "; still paused by spec.paused" if r.spec.paused else ""
    r.event(EventType.NORMAL, "Resumed", f"resumed from {hold.value}{still}")
    return None


def _action_rollback(r: Draft, action: Action) -> str | None:
    if r.state.rolled_back:
        return None
    stage = r.state.stage
    r.move_to(Stage.DISABLED, MANUAL_ROLLBACK, hold=Hold.MANUAL_ROLLBACK)
    r.state = replace(r.state, consecutive_failures=0, consecutive_errors=0)
    r.event(
        EventType.WARNING,
        "RolledBack",
        f"rolled back from {stage.value if stage else 'Pending'} to DISABLED by action"
        f"{_reason_suffix(action)}",
    )
    return None


def _action_check(r: Draft, action: Action) -> str | None:
    # The operator took an analysis before deciding; the result is in lastAnalysis.
    return None


def _action_retry(r: Draft, action: Action) -> str | None:
    if not r.state.rolled_back:
        return "not rolled back"
    fresh = fresh_hold(r)
    if fresh:
        return fresh
    r.state = replace(r.state, hold=None, consecutive_failures=0, consecutive_errors=0)
    r.event(EventType.NORMAL, "Retrying", "retry: climbing again from DISABLED")
    return None


def _reason_suffix(action: Action) -> str:
    return f": {action.reason}" if action.reason else ""


_ACTIONS = {
    ActionVerb.ADVANCE: _action_advance,
    ActionVerb.PAUSE: _action_pause,
    ActionVerb.RESUME: _action_resume,
    ActionVerb.ROLLBACK: _action_rollback,
    ActionVerb.CHECK: _action_check,
    ActionVerb.RETRY: _action_retry,
}
