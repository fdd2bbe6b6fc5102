"""The round planner, one row per rule: which I/O a round needs, and when the next is due."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flagops.api.actions import Action, ActionVerb
from flagops.api.rollout import RolloutSpec, RolloutStatus
from flagops.api.validation import RolloutClaim
from flagops.rollouts.plan import (
    PROBE_GRACE,
    PROBE_POLL,
    FlagFacts,
    RoundFacts,
    RoundPlan,
    next_wake,
    plan,
    probe_start_due,
    wake_after_takeover,
)
from flagops.rollouts.ticks import next_due

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
ME = RolloutClaim("r", "uid-r", "f", "2026-01-01T00:00:00Z")
INTERVAL = timedelta(seconds=60)
# ME's analyses are due at 21.1 s past each minute (its offset on the tick grid); the
# status below was analysed at 11:59:30, after the 11:59:21 one was due.
NEXT_DUE = next_due(ME.uid, INTERVAL, T0)
OLDER = RolloutClaim("old", "uid-old", "f", "2025-01-01T00:00:00Z")
FLAG = FlagFacts("f", "f", "calendar_sync")
PROBE = {"healthProbe": {"integration": "calendar_sync", "every": "5m", "timeout": "60s"}}
VALIDATED = {
    "type": "Validated",
    "status": "True",
    "reason": "Validated",
    "message": "",
    "lastTransitionTime": "2026-01-01T11:00:00Z",
}


def spec(**kw: Any) -> RolloutSpec:
    return RolloutSpec.model_validate({"flagRef": {"name": "f"}, **kw})


def status(**kw: Any) -> RolloutStatus:
    """A Rollout at BETA, validated for generation 1, analysed 30s ago (interval 60s)."""
    base: dict[str, Any] = {
        "stage": "BETA",
        "phase": "Progressing",
        "stageStartedAt": "2026-01-01T11:00:00Z",
        "observedGeneration": 1,
        "conditions": [VALIDATED],
        "lastAnalysis": {"time": "2026-01-01T11:59:30Z", "verdict": "Pass"},
    }
    return RolloutStatus.model_validate({**base, **kw})


def facts(**kw: Any) -> RoundFacts:
    base: dict[str, Any] = {
        "namespace": "ns",
        "generation": 1,
        "claim": ME,
        "claims": (ME,),
        "flag": FLAG,
    }
    return RoundFacts(**{**base, **kw})


ACTION = Action(verb=ActionVerb.CHECK, id="a1", reason=None, force=False)


@dataclass(frozen=True)
class Case:
    id: str
    spec: RolloutSpec = field(default_factory=spec)
    status: RolloutStatus = field(default_factory=status)
    facts: RoundFacts = field(default_factory=facts)
    now: datetime = T0
    degraded: str | None = None  # a part of the reason; None: not degraded
    validate: bool = False
    validated: bool | None = None
    read_probe_job: str | None = None
    abandon: bool = False
    start_probes: bool = False
    analysis_due: bool = False


CASES = [
    # --- validation -----------------------------------------------------
    Case("steady-round-needs-no-io"),
    Case(
        "not-validated-yet-validates",
        status=status(conditions=[]),
        validate=True,
    ),
    Case(
        "new-generation-revalidates-and-analyses",
        facts=facts(generation=2),
        validate=True,
        analysis_due=True,
    ),
    # --- degraded -------------------------------------------------------
    Case(
        "missing-flag-degrades-without-io",
        facts=facts(flag=None),
        status=status(conditions=[]),
        degraded="not found in namespace ns",
        validated=False,
    ),
    Case(
        "younger-rollout-on-the-same-flag-degrades",
        facts=facts(claims=(OLDER, ME)),
        degraded="old",
        validated=False,
    ),
    Case(
        "no-integration-and-no-queries-degrades",
        facts=facts(flag=FlagFacts("f", "f", None)),
        degraded="default queries do not apply",
        validated=False,
    ),
    Case(
        "unknown-placeholder-degrades",
        spec=spec(
            analysis={"prometheus": {"errorRateQuery": "x{{nope}}", "sampleCountQuery": "y"}}
        ),
        degraded="unknown placeholder",
        validated=False,
    ),
    Case(
        "probe-without-any-integration-degrades",
        spec=spec(
            healthProbe={},
            analysis={"prometheus": {"errorRateQuery": "x", "sampleCountQuery": "y"}},
        ),
        facts=facts(flag=FlagFacts("f", "f", None)),
        degraded="healthProbe.integration is unset",
        validated=False,
    ),
    Case(
        "degraded-reads-its-running-probe-but-starts-none",
        spec=spec(**PROBE),
        facts=facts(flag=None),
        status=status(activeProbeJob="job-1", activeProbeStartedAt="2026-01-01T11:59:30Z"),
        degraded="not found in namespace ns",
        validated=False,
        read_probe_job="job-1",
    ),
    # --- analysis -------------------------------------------------------
    Case(
        "tick-missed-analyses-late",
        now=NEXT_DUE + timedelta(seconds=45),
        analysis_due=True,
    ),
    Case(
        "tick-due-analyses",
        now=NEXT_DUE,
        analysis_due=True,
    ),
    Case(
        "tick-within-slack-analyses",
        now=NEXT_DUE - timedelta(milliseconds=100),
        analysis_due=True,
    ),
    Case(
        "tick-not-due-waits",
        now=NEXT_DUE - timedelta(milliseconds=300),
    ),
    Case(
        "never-analysed-analyses",
        status=status(lastAnalysis=None),
        analysis_due=True,
    ),
    Case("pending-action-analyses-at-once", facts=facts(action=ACTION), analysis_due=True),
    Case(
        "disabled-stage-is-not-analysed",
        status=status(stage="DISABLED", lastAnalysis=None),
    ),
    Case(
        "unadopted-rollout-is-not-analysed",
        status=status(stage=None, lastAnalysis=None),
    ),
    # --- probes ---------------------------------------------------------
    Case("probe-configured-may-start", spec=spec(**PROBE), start_probes=True),
    Case(
        "running-probe-is-read",
        spec=spec(**PROBE),
        status=status(activeProbeJob="job-1", activeProbeStartedAt="2026-01-01T11:59:30Z"),
        read_probe_job="job-1",
        start_probes=True,
    ),
    Case(
        "overrun-probe-is-abandoned-if-unfinished",
        spec=spec(**PROBE),
        status=status(activeProbeJob="job-1", activeProbeStartedAt="2026-01-01T11:58:00Z"),
        read_probe_job="job-1",
        abandon=True,
        start_probes=True,
    ),
    Case(
        "no-probe-reads-no-job",
        status=status(activeProbeJob="job-1", activeProbeStartedAt="2026-01-01T11:00:00Z"),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_plan(case: Case) -> None:
    got = plan(case.spec, case.status, case.facts, case.now)
    if case.degraded is None:
        assert got.degraded is None
    else:
        assert got.degraded is not None and case.degraded in got.degraded
    assert (got.validate, got.validated) == (case.validate, case.validated)
    assert got.read_probe_job == case.read_probe_job
    assert got.abandon_unfinished_probe is case.abandon
    assert got.start_probes is case.start_probes
    assert got.analysis_due is case.analysis_due


def test_plan_renders_the_flag_key_and_integration_into_the_config() -> None:
    got = plan(spec(), status(), facts(flag=FlagFacts("f", "key.f", "calendar_sync")), T0)
    assert got.config is not None
    assert (got.config.flag, got.config.integration, got.config.namespace) == (
        "key.f",
        "calendar_sync",
        "ns",
    )


def test_a_query_prometheus_refuses_turns_the_plan_degraded_and_quiet() -> None:
    got = plan(spec(**PROBE), status(lastAnalysis=None), facts(generation=2), T0)
    assert got.validate and got.analysis_due and got.start_probes
    bad = got.invalid("errorRateQuery does not parse: x")
    assert isinstance(bad, RoundPlan)
    assert bad.degraded == "errorRateQuery does not parse: x"
    assert (bad.validated, bad.start_probes, bad.analysis_due) == (False, False, False)


def test_overrun_is_timeout_plus_grace() -> None:
    started = T0 - timedelta(seconds=60) - PROBE_GRACE
    raw = {"activeProbeJob": "j", "activeProbeStartedAt": started.isoformat()}
    assert not plan(spec(**PROBE), status(**raw), facts(), T0).abandon_unfinished_probe
    later = T0 + timedelta(seconds=1)
    assert plan(spec(**PROBE), status(**raw), facts(), later).abandon_unfinished_probe


@pytest.mark.parametrize(
    ("raw", "due"),
    [
        ({}, True),  # never probed
        ({"activeProbeJob": "j", "activeProbeStartedAt": "2026-01-01T11:00:00Z"}, False),
        ({"lastProbe": {"job": "j", "time": "2026-01-01T11:56:00Z", "result": "Succeeded"}}, False),
        ({"lastProbe": {"job": "j", "time": "2026-01-01T11:55:00Z", "result": "Failed"}}, True),
    ],
)
def test_probe_start_due(raw: dict[str, Any], due: bool) -> None:
    assert probe_start_due(spec(**PROBE), status(**raw), T0) is due
    assert probe_start_due(spec(), status(**raw), T0) is False


@pytest.mark.parametrize(
    ("rollout", "raw", "seconds"),
    [
        (spec(), {}, (NEXT_DUE - T0).total_seconds()),  # the next tick, at ME's offset
        (spec(), {"lastAnalysis": None}, (NEXT_DUE - T0).total_seconds()),
        (
            spec(),
            {"activeProbeJob": "j", "lastAnalysis": None},
            PROBE_POLL.total_seconds(),
        ),
        (
            spec(**PROBE),
            {
                "lastAnalysis": None,
                "lastProbe": {"job": "j", "time": "2026-01-01T11:55:10Z", "result": "Succeeded"},
            },
            10.0,  # the next probe comes before the next tick
        ),
        (
            spec(**PROBE),
            {
                "lastAnalysis": None,
                "lastProbe": {"job": "j", "time": "2026-01-01T11:54:00Z", "result": "Succeeded"},
            },
            0.5,  # overdue: at once, but never in a tight loop
        ),
    ],
)
def test_next_wake(rollout: RolloutSpec, raw: dict[str, Any], seconds: float) -> None:
    assert next_wake(rollout, status(**raw), ME.uid, T0) == pytest.approx(seconds)


def test_late_round_is_late_for_its_tick_only() -> None:
    """A round 45 s late is followed by the next one on the grid, not 60 s later."""
    late = NEXT_DUE + timedelta(seconds=45)
    analysed = status(lastAnalysis={"time": late.isoformat(), "verdict": "Pass"})
    assert next_wake(spec(), analysed, ME.uid, late) == pytest.approx(15.0)


@pytest.mark.parametrize(
    ("raw", "generation", "action", "at_once"),
    [
        ({}, 1, None, False),  # nothing pending: its next slot, as before the takeover
        ({}, 2, None, True),  # a spec change not yet observed
        ({"observedGeneration": None, "stage": None}, 1, None, True),  # never handled
        ({}, 1, ACTION, True),  # an action not yet taken
        (
            {
                "lastAction": {
                    "name": "check",
                    "id": "a1",
                    "at": T0.isoformat(),
                    "result": "Succeeded",
                }
            },
            1,
            ACTION,
            False,
        ),
        ({"activeProbeJob": "j"}, 1, None, True),  # a probe Job to read
        (
            {
                "pendingEvents": [
                    {
                        "sequence": 1,
                        "type": "Normal",
                        "reason": "StageAdvanced",
                        "message": "m",
                        "time": T0.isoformat(),
                    }
                ]
            },
            1,
            None,
            True,
        ),  # Events to post
    ],
)
def test_after_a_takeover_only_work_that_cannot_wait_runs_at_once(
    raw: dict[str, Any], generation: int, action: Action | None, at_once: bool
) -> None:
    stored = status(**raw)
    wake = wake_after_takeover(spec(), stored, generation, action, ME.uid, T0)
    assert wake == (0.0 if at_once else pytest.approx(next_wake(spec(), stored, ME.uid, T0)))
    assert at_once or wake > 1.0
