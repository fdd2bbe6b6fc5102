"""decide() driven by hypothesis through random verdicts, time, actions and spec changes.

Each round also writes the decision into a `RolloutStatus`, serialises it as
the apiserver would store it, and reads the state back: the state a
restarted operator would see must be the state the decision produced.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from flagops.api.actions import Action, ActionVerb
from flagops.api.rollout import Phase, RolloutStatus, Verdict
from flagops.api.stages import ORDER, Stage, adoption_stage, index
from flagops.rollouts.decide import decide
from flagops.rollouts.model import (
    DecisionInputs,
    DecisionSpec,
    FlagSnapshot,
    ProbeOutcome,
    Publication,
    RolloutState,
    Transition,
)
from flagops.rollouts.state import apply_to_status, state_from_status

T0 = datetime(2026, 3, 1, tzinfo=UTC)

# Weighted towards a healthy climb, so runs reach the high stages and the
# rarer events (fails, errors, actions) hit every stage.
verdicts = st.sampled_from(
    [None, *[Verdict.PASS] * 6, Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.ERROR]
)
actions = st.one_of(
    *[st.none()] * 5,
    st.tuples(
        st.sampled_from(
            [*[ActionVerb.ADVANCE] * 3, *[ActionVerb.RESUME, ActionVerb.RETRY] * 2, *ActionVerb]
        ),
        st.booleans(),
        st.booleans(),
    ),
)


class DecideMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.spec = DecisionSpec(generation=1, stage_duration=timedelta(minutes=10))
        self.state = RolloutState()
        self.status = RolloutStatus()
        self.flag = FlagSnapshot(False, 0)
        self.performed: set[str] = set()
        self.next_id = 0

    @initialize(
        enabled=st.booleans(),
        percent=st.sampled_from([0, 5, 10, 30, 50, 80, 100]),
        probe=st.booleans(),
        target_stage=st.sampled_from([*ORDER, Stage.FULL, Stage.FULL]),
    )
    def start(self, enabled: bool, percent: int, probe: bool, target_stage: Stage) -> None:
        self.flag = FlagSnapshot(enabled, percent)
        self.spec = replace(self.spec, probe_configured=probe, target_stage=target_stage)

    @rule(
        target_stage=st.sampled_from([*ORDER, Stage.FULL, Stage.FULL]),
        paused=st.sampled_from([False, False, False, True]),
        auto_advance=st.sampled_from([True, True, True, False]),
        rollback_on_error=st.booleans(),
        pause_on_error=st.booleans(),
        failure_limit=st.integers(1, 3),
        error_limit=st.integers(1, 4),
    )
    def change_spec(
        self,
        target_stage: Stage,
        paused: bool,
        auto_advance: bool,
        rollback_on_error: bool,
        pause_on_error: bool,
        failure_limit: int,
        error_limit: int,
    ) -> None:
        self.spec = replace(
            self.spec,
            generation=self.spec.generation + 1,
            target_stage=target_stage,
            paused=paused,
            auto_advance=auto_advance,
            rollback_on_error=rollback_on_error,
            pause_on_error=pause_on_error,
            failure_limit=failure_limit,
            consecutive_error_limit=error_limit,
        )

    @rule(
        verdict=verdicts,
        seconds=st.sampled_from([0, 1, 60, 300, 599, 600, 900, 900]),
        probe=st.sampled_from([*ProbeOutcome, ProbeOutcome.PASSED, ProbeOutcome.PASSED]),
        validated=st.sampled_from([None, None, True, True, False]),
        degraded=st.sampled_from([*[None] * 12, "flag missing"]),
        action=actions,
        publish_lag=st.sampled_from([None, 0, 1, 120, 700]),
    )
    def tick(
        self,
        verdict: Verdict | None,
        seconds: int,
        probe: ProbeOutcome,
        validated: bool | None,
        degraded: str | None,
        action: tuple[ActionVerb, bool, bool] | None,
        publish_lag: int | None,
    ) -> None:
        self.now += timedelta(seconds=seconds)
        # The publisher put the current stage out `publish_lag` seconds after it began
        # (None: not yet), as the FeatureFlag's status would say.
        published: Publication | None = None
        started = self.state.stage_started_at
        if self.state.stage is not None and started is not None and publish_lag is not None:
            since = started + timedelta(seconds=publish_lag)
            if since <= self.now:
                published = Publication(self.state.stage, since)
        pending: Action | None = None
        if action is not None:
            verb, force, reuse = action
            if reuse and self.state.last_action is not None:
                action_id = self.state.last_action.id
            else:
                self.next_id += 1
                action_id = f"id{self.next_id}"
            pending = Action(verb=verb, id=action_id, force=force and verb is ActionVerb.ADVANCE)
        inputs = DecisionInputs(
            verdict=verdict,
            samples=50 if verdict is Verdict.INCONCLUSIVE else 500,
            error_rate=0.5 if verdict is Verdict.FAIL else 0.0,
            probe=probe,
            action=pending,
            validated=validated,
            degraded_reason=degraded,
            flag=self.flag,
            published=published,
        )
        before = self.state
        decision = decide(self.spec, before, inputs, self.now)
        after = decision.state
        self._check_step(before, inputs, after)
        self._check_action_once(before, inputs, after)
        self._check_transitions(before, decision.transitions, after)

        # Restart: status written, stored as JSON, read back by a new operator.
        status = apply_to_status(self.status, decision, inputs, self.spec, self.now)
        stored = RolloutStatus.model_validate(status.to_api())
        assert state_from_status(stored) == after
        self.status = stored
        self.state = after

    def _validated(self, before: RolloutState, inputs: DecisionInputs) -> bool:
        return before.validated if inputs.validated is None else inputs.validated

    def _check_step(
        self, before: RolloutState, inputs: DecisionInputs, after: RolloutState
    ) -> None:
        old, new = before.stage, after.stage
        action = inputs.action
        fresh_action = action is not None and (
            before.last_action is None or before.last_action.id != action.id
        )
        advance = fresh_action and action is not None and action.verb is ActionVerb.ADVANCE
        forced = advance and action is not None and action.force
        if new is None:
            assert old is None
            return
        if old is None:
            # Adopted this round: judge the rest of the round from the adoption stage.
            old = adoption_stage(self.flag.enabled, self.flag.rollout_percent)
            before = replace(before, stage=old, stage_started_at=self.now)
        step = index(new) - index(old)
        if step > 0:
            assert step == 1, f"skipped a stage: {old} -> {new}"
            assert after.phase not in (Phase.PAUSED, Phase.ROLLED_BACK, Phase.DEGRADED)
            assert not self.spec.paused
            if old is Stage.DISABLED:
                probe_ok = not self.spec.probe_configured or inputs.probe is ProbeOutcome.PASSED
                assert forced or (self._validated(before, inputs) and probe_ok)
            else:
                stored_pass = (
                    before.last_verdict is Verdict.PASS
                    and before.last_analysis_at is not None
                    and before.stage_started_at is not None
                    and before.last_analysis_at >= before.stage_started_at
                )
                assert (
                    inputs.verdict is Verdict.PASS
                    or forced
                    or (advance and inputs.verdict is None and stored_pass)
                ), "advanced without Pass"
                if not advance:
                    # Baked from publication: never from the status write alone.
                    seen = before.stage_published_at or (
                        inputs.published.since
                        if inputs.published and inputs.published.stage is old
                        else None
                    )
                    assert seen is not None, "advanced before the stage was published"
                    assert before.stage_started_at is not None
                    assert self.now - max(seen, before.stage_started_at) >= (
                        self.spec.stage_duration
                    )
            assert after.stage_started_at == self.now
        elif step < 0:
            rolled_back = new is Stage.DISABLED and after.phase in (
                Phase.ROLLED_BACK,
                Phase.DEGRADED,
            )
            stepped_back = new is self.spec.target_stage
            assert rolled_back or stepped_back, f"moved down {old} -> {new} without cause"
        # Counters follow the verdict.
        assert after.consecutive_failures >= 0
        assert after.consecutive_errors >= 0
        assert after.consecutive_failures <= before.consecutive_failures + 1
        assert after.consecutive_errors <= before.consecutive_errors + 1
        if inputs.verdict is Verdict.PASS:
            assert (after.consecutive_failures, after.consecutive_errors) == (0, 0)
        if inputs.verdict in (Verdict.FAIL, Verdict.INCONCLUSIVE):
            assert after.consecutive_errors == 0
        if inputs.verdict is None and new == old:
            assert after.consecutive_failures <= before.consecutive_failures
            assert after.consecutive_errors <= before.consecutive_errors

    def _check_action_once(
        self, before: RolloutState, inputs: DecisionInputs, after: RolloutState
    ) -> None:
        if after.last_action != before.last_action:
            assert after.last_action is not None
            assert after.last_action.id not in self.performed, "action id performed twice"
            assert inputs.action is not None and after.last_action.id == inputs.action.id
            assert after.last_action.at == self.now
            self.performed.add(after.last_action.id)
        elif inputs.action is not None:
            assert inputs.action.id in self.performed

    def _check_transitions(
        self,
        before: RolloutState,
        transitions: tuple[Transition, ...],
        after: RolloutState,
    ) -> None:
        if after.stage != before.stage:
            assert transitions
        for transition in transitions:
            assert transition.from_stage != transition.to_stage

    @invariant()
    def never_above_target(self) -> None:
        if self.state.stage is not None:
            assert index(self.state.stage) <= index(self.spec.target_stage) or (
                self.state.observed_generation != self.spec.generation
            )

    @invariant()
    def phase_matches_state(self) -> None:
        state = self.state
        if state.phase is Phase.COMPLETED:
            assert state.stage is not None
            assert state.hold is None
        if state.phase is Phase.ROLLED_BACK:
            assert state.stage is Stage.DISABLED
            assert state.rolled_back
        if state.phase is Phase.PENDING:
            assert state.stage is None
        if state.phase is Phase.PROGRESSING:
            assert state.hold is None
            assert state.stage is not None

    @invariant()
    def rolled_back_means_disabled(self) -> None:
        if self.state.rolled_back:
            assert self.state.stage is Stage.DISABLED


DecideMachine.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDecideMachine = DecideMachine.TestCase
