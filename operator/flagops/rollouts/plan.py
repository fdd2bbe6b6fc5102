"""Planning one round of a Rollout: which I/O it needs. Pure.

`plan()` reads the spec, the status and the facts the reconciler gathered
without asking anything (the flag, the other Rollouts' claims, the pending
action) and says what to do before the decision: re-validate the queries or
not, read the running probe Job or give it up, start the next probe, take an
analysis. `next_wake()` says, after the decision, when the next round is due, and
`wake_after_takeover()` when the first round is due on a replica that takes over.
The reconciler only does what these say (controller/rollouts.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flagops.api.actions import Action
from flagops.api.rollout import RolloutSpec, RolloutStatus
from flagops.api.stages import Stage
from flagops.api.validation import RolloutClaim, ownership_problem
from flagops.rollouts.probe_job import probe_is_due, probe_overdue
from flagops.rollouts.queries import AnalysisConfig, TemplateError, config_for
from flagops.rollouts.state import state_from_status
from flagops.rollouts.ticks import current_tick, due_at, next_due

# A probe Job whose result has not come this long after its deadline is forgotten.
PROBE_GRACE = timedelta(seconds=30)
# While a probe runs, look at it at least this often even if no Job event wakes us.
PROBE_POLL = timedelta(seconds=5)
# The soonest a round follows the previous one, whatever is due.
MIN_WAKE = timedelta(seconds=0.5)
# An analysis due within this much is taken now rather than after another wake.
DUE_SLACK = timedelta(milliseconds=200)


@dataclass(frozen=True)
class FlagFacts:
    """The Rollout's FeatureFlag as the publisher knows it."""

    name: str
    key: str  # the flag's key in the document (what queries call {{flag}})
    integration: str | None


@dataclass(frozen=True)
class RoundFacts:
    """What the reconciler knows without any I/O of its own."""

    namespace: str
    generation: int
    claim: RolloutClaim  # this Rollout's own claim on its flag
    claims: Sequence[RolloutClaim]  # every Rollout's claim in the namespace
    flag: FlagFacts | None  # None: the flag does not exist (yet)
    action: Action | None = None  # the pending action not yet performed
    grouping: bool = True  # default-template analyses share grouped tick queries


@dataclass(frozen=True)
class RoundPlan:
    """The I/O one round needs, decided before any of it happens."""

    degraded: str | None  # why the Rollout cannot run, or None
    config: AnalysisConfig | None  # the queries to validate and run (None: none apply)
    validate: bool  # ask Prometheus whether the queries parse and answer
    validated: bool | None  # known without asking (False when degraded); None: unchanged
    read_probe_job: str | None  # the running probe Job to read
    abandon_unfinished_probe: bool  # forget that Job if it has no result (overdue)
    start_probes: bool  # start the next probe Job when one is due
    analysis_due: bool  # measure and judge this round
    grouped: bool = False  # measure from the shared tick queries (default templates)
    tick: datetime | None = None  # the grid tick this round's analysis measures up to
    due: datetime | None = None  # when that analysis was due (None: woken for it early)

    def invalid(self, reason: str) -> RoundPlan:
        """The plan once Prometheus said a query does not parse: Degraded, nothing more."""
        return replace(
            self, degraded=reason, validated=False, start_probes=False, analysis_due=False
        )


def plan(spec: RolloutSpec, status: RolloutStatus, facts: RoundFacts, now: datetime) -> RoundPlan:
    state = state_from_status(status)
    flag = facts.flag
    degraded = ownership_problem(
        facts.claim, facts.claims, flag_exists=flag is not None, namespace=facts.namespace
    )
    config: AnalysisConfig | None = None
    if degraded is None and flag is not None:
        try:
            config = config_for(
                spec, flag=flag.key, integration=flag.integration, namespace=facts.namespace
            )
        except TemplateError as exc:
            degraded = f"analysis queries: {exc}"
    probe = spec.health_probe
    if (
        degraded is None
        and flag is not None
        and probe is not None
        and not (probe.integration or flag.integration)
    ):
        degraded = "healthProbe.integration is unset and the flag names no integration"

    new_generation = status.observed_generation != facts.generation
    validate = degraded is None and (not state.validated or new_generation)
    analysable = (
        config is not None
        and degraded is None
        and state.stage is not None
        and state.stage is not Stage.DISABLED
    )
    interval = spec.analysis.interval_delta
    uid = facts.claim.uid
    tick = current_tick(uid, interval, now + DUE_SLACK)
    tick_due = due_at(uid, tick, interval)
    due = analysable and analysis_due(status, facts, tick_due)
    on_schedule = due and not woken_early(status, facts)
    prom = spec.analysis.prometheus
    return RoundPlan(
        degraded=degraded,
        config=config,
        validate=validate,
        validated=False if degraded is not None else None,
        read_probe_job=status.active_probe_job if probe is not None else None,
        abandon_unfinished_probe=probe is not None
        and probe_overdue(
            started_at=status.active_probe_started_at,
            timeout=probe.timeout_delta,
            now=now,
            grace=PROBE_GRACE,
        ),
        # A Degraded Rollout has no integration to probe for sure, nor a flag of its own.
        start_probes=probe is not None and degraded is None,
        analysis_due=due,
        grouped=facts.grouping and (prom.error_rate_query, prom.sample_count_query) == (None, None),
        tick=tick,
        due=tick_due if on_schedule else None,
    )


def woken_early(status: RolloutStatus, facts: RoundFacts) -> bool:
    """An analysis taken at once for a new spec or an action, not for its tick."""
    return facts.action is not None or status.observed_generation != facts.generation


def analysis_due(status: RolloutStatus, facts: RoundFacts, tick_due: datetime) -> bool:
    """Once per tick of the grid (due at the Rollout's own offset after it, `tick_due` for
    the current one), and at once after a spec change or an action."""
    last = status.last_analysis.time if status.last_analysis else None
    if last is None or woken_early(status, facts):
        return True
    return last < tick_due - DUE_SLACK


def probe_start_due(spec: RolloutSpec, status: RolloutStatus, now: datetime) -> bool:
    """Whether the next probe Job is due, on the status after the running one was read."""
    probe = spec.health_probe
    if probe is None:
        return False
    return probe_is_due(
        every=probe.every_delta,
        last_started_at=status.active_probe_started_at
        or (status.last_probe.time if status.last_probe else None),
        active_job=status.active_probe_job,
        now=now,
    )


def next_wake(spec: RolloutSpec, status: RolloutStatus, uid: str, now: datetime) -> float:
    """Seconds until the next round: the next analysis, probe start or probe poll."""
    interval = max(next_due(uid, spec.analysis.interval_delta, now) - now, MIN_WAKE)
    if status.active_probe_job:
        interval = min(interval, PROBE_POLL)
    if spec.health_probe is not None and not status.active_probe_job:
        last = status.active_probe_started_at or (
            status.last_probe.time if status.last_probe else None
        )
        if last is not None:
            interval = min(interval, max(last + spec.health_probe.every_delta - now, MIN_WAKE))
    return max(interval.total_seconds(), MIN_WAKE.total_seconds())


def wake_after_takeover(
    spec: RolloutSpec,
    status: RolloutStatus,
    generation: int,
    action: Action | None,
    uid: str,
    now: datetime,
) -> float:
    """Seconds until a Rollout's first round on a replica that has just taken over.

    At once when something cannot wait: a spec generation not yet observed, an action
    not yet taken, a probe Job to read, Events to post. Otherwise when `next_wake` says,
    as the replica that was active would have run it: 5,000 Rollouts taken over together
    keep their spread over the interval instead of all working in the same seconds (the
    next analysis counts the whole gap since the stored totals).
    """
    taken = status.last_action.id if status.last_action else None
    if (
        status.observed_generation != generation
        or (action is not None and action.id != taken)
        or status.active_probe_job
        or status.pending_events
    ):
        return 0.0
    return next_wake(spec, status, uid, now)
