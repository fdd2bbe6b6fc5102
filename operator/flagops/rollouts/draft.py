"""The decision being built in one `decide()` call, and the questions its rules ask.

Only the rollouts decision modules (decide, manual) see a `Draft`; `decide()`
returns an immutable `Decision` made from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from flagops.api.rollout import Verdict
from flagops.api.stages import Stage
from flagops.rollouts.model import (
    DecisionInputs,
    DecisionSpec,
    Event,
    EventType,
    Hold,
    ProbeOutcome,
    RolloutState,
    Transition,
)


@dataclass
class Draft:
    """The decision being built; only `decide` sees it, and it never escapes mutable."""

    spec: DecisionSpec
    inputs: DecisionInputs
    now: datetime
    state: RolloutState
    events: list[Event] = field(default_factory=list)
    transitions: list[Transition] = field(default_factory=list)
    # The hold before this round's own reactions: resume and retry may only
    # lift what the person asking could have seen.
    hold_seen: Hold | None = None

    def event(self, type_: EventType, reason: str, message: str) -> None:
        self.events.append(Event(type_, reason, message))

    def move_to(self, stage: Stage, reason: str, *, hold: Hold | None = None) -> None:
        old = self.state.stage
        if old == stage:
            self.state = replace(self.state, hold=hold if hold else self.state.hold)
            return
        self.transitions.append(Transition(old, stage, reason))
        # Counters and bake time belong to a stage: a new stage starts them afresh.
        self.state = replace(
            self.state,
            stage=stage,
            stage_started_at=self.now,
            stage_published_at=None,
            consecutive_failures=0,
            consecutive_errors=0,
            hold=hold if hold else self.state.hold,
        )


def validated(r: Draft) -> bool:
    """The controller may skip re-validating (None): the stored condition stands."""
    return r.state.validated if r.inputs.validated is None else r.inputs.validated


def pause_state(r: Draft) -> str | None:
    """Why the Rollout may not move forward now, or None."""
    hold = r.state.hold
    if hold is not None:
        return "rolled back; use retry" if hold.is_rollback else f"paused ({hold.value})"
    if r.spec.paused:
        return "paused by spec.paused"
    return None


def newest_verdict_in_stage(r: Draft) -> Verdict | None:
    if r.inputs.verdict is not None:
        return r.inputs.verdict
    at, started = r.state.last_analysis_at, r.state.stage_started_at
    if at is None or started is None or at < started:
        return None
    return r.state.last_verdict


def fresh_hold(r: Draft) -> str | None:
    """Why a hold set by this very round cannot be lifted by an older request."""
    hold = r.state.hold
    if hold is None or hold is r.hold_seen:
        return None
    return f"{hold.value} happened just now, after this action was requested; repeat it to override"


def first_stage_missing(r: Draft) -> str | None:
    """What DISABLED -> INTERNAL still needs (no traffic exists yet to analyse)."""
    if not validated(r):
        return "not validated"
    if r.spec.probe_configured and r.inputs.probe is not ProbeOutcome.PASSED:
        return f"waiting for a passing health probe (newest: {r.inputs.probe.value})"
    return None
