from __future__ import annotations

import pytest

from flagops.api.stages import Stage
from flagops.publishing.resolve import FlagInput, RolloutControl, controlling_rollouts, resolve


def flag(
    name: str, key: str | None = None, created: str = "2026-01-01T00:00:00Z", **kw: object
) -> FlagInput:
    spec = {"key": key, **kw} if key else dict(kw)
    return FlagInput.from_spec(name, created, spec)


def control(
    stage: Stage, name: str = "r1", flag_name: str = "f", created: str = "2026-01-01T00:00:00Z"
) -> RolloutControl:
    return RolloutControl(
        name=name, flag_name=flag_name, stage=stage, internal_cohorts=("internal",), created=created
    )


def test_spec_published_as_written_with_key_defaulting_to_name() -> None:
    result = resolve(
        [flag("export-pdf", enabled=True, rolloutPercent=100, allowedCohorts=["all"])], []
    )
    state = result.published["export-pdf"]
    assert (state.enabled, state.rollout_percent, state.allowed_cohorts, state.stage) == (
        True,
        100,
        ("all",),
        None,
    )
    outcome = result.outcomes["export-pdf"]
    assert outcome.published and outcome.source == "spec" and outcome.conflict_with == ()


def test_dates_are_published_in_rfc3339_utc() -> None:
    result = resolve(
        [flag("f", startDate="2026-01-01T01:00:00+01:00", endDate="2026-02-01T00:00:00Z")], []
    )
    state = result.published["f"]
    assert (state.start_date, state.end_date) == ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")


@pytest.mark.parametrize(
    ("stage", "enabled", "percent", "cohorts"),
    [
        (Stage.DISABLED, False, 0, ()),
        (Stage.INTERNAL, True, 0, ("internal",)),
        (Stage.BETA, True, 10, ("beta", "internal")),
        (Stage.EARLY_ACCESS, True, 25, ("beta", "internal")),
        (Stage.LIMITED, True, 50, ("beta", "internal")),
        (Stage.GENERAL, True, 75, ("beta", "internal")),
        (Stage.FULL, True, 100, ("all",)),
    ],
)
def test_rollout_stage_decides_exposure(
    stage: Stage, enabled: bool, percent: int, cohorts: tuple[str, ...]
) -> None:
    f = flag(
        "f",
        key="calendar_sync",
        enabled=False,
        rolloutPercent=3,
        allowedCohorts=["beta", "internal"],
        metadata={"owner": "team"},
    )
    result = resolve([f], [control(stage)])
    state = result.published["calendar_sync"]
    assert (state.enabled, state.rollout_percent, state.allowed_cohorts) == (
        enabled,
        percent,
        cohorts,
    )
    assert state.stage == stage.value
    assert state.metadata == {"owner": "team"}  # the flag's other fields still apply
    assert result.outcomes["f"].source == "rollout/r1"


def test_oldest_rollout_holding_a_stage_controls() -> None:
    older = control(Stage.BETA, name="old", created="2026-01-01T00:00:00Z")
    newer = control(Stage.FULL, name="new", created="2026-01-02T00:00:00Z")
    assert controlling_rollouts([newer, older])["f"].name == "old"


def test_duplicate_key_publishes_oldest_and_reports_both() -> None:
    a = flag("a", key="shared", created="2026-01-01T00:00:00Z", enabled=True)
    b = flag("b", key="shared", created="2026-01-02T00:00:00Z", enabled=False)
    other = flag("c", key="other", enabled=True)
    result = resolve([b, a, other], [])
    assert set(result.published) == {"shared", "other"}
    assert result.published["shared"].enabled is True
    assert result.outcomes["a"].published and result.outcomes["a"].conflict_with == ("b",)
    assert not result.outcomes["b"].published and result.outcomes["b"].conflict_with == ("a",)
    assert result.outcomes["c"].published and result.outcomes["c"].conflict_with == ()


def test_invalid_spec_is_reported_not_raised_and_others_still_publish() -> None:
    bad = FlagInput.from_spec("bad", "2026-01-01T00:00:00Z", {"rolloutPercent": 101})
    result = resolve([bad, flag("good", enabled=True)], [])
    assert set(result.published) == {"good"}
    outcome = result.outcomes["bad"]
    assert (
        not outcome.published
        and outcome.error is not None
        and "spec.rolloutPercent" in outcome.error
    )


def test_effective_carries_source() -> None:
    result = resolve([flag("f", enabled=True)], [])
    effective = result.outcomes["f"].effective()
    assert effective is not None and effective["source"] == "spec" and effective["enabled"] is True


def test_resolution_is_independent_of_input_order() -> None:
    flags = [flag(f"f{i}", enabled=bool(i % 2), rolloutPercent=i) for i in range(20)]
    assert resolve(flags, []).published == resolve(list(reversed(flags)), []).published
