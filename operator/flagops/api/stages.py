"""The rollout stage table: one place that says what each stage exposes."""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    DISABLED = "DISABLED"
    INTERNAL = "INTERNAL"
    BETA = "BETA"
    EARLY_ACCESS = "EARLY_ACCESS"
    LIMITED = "LIMITED"
    GENERAL = "GENERAL"
    FULL = "FULL"


ORDER: tuple[Stage, ...] = tuple(Stage)

# Percent of users (outside the cohorts) a stage lets in. DISABLED turns the flag off.
PERCENT: dict[Stage, int] = {
    Stage.DISABLED: 0,
    Stage.INTERNAL: 0,
    Stage.BETA: 10,
    Stage.EARLY_ACCESS: 25,
    Stage.LIMITED: 50,
    Stage.GENERAL: 75,
    Stage.FULL: 100,
}


def index(stage: Stage) -> int:
    return ORDER.index(stage)


def next_stage(stage: Stage) -> Stage:
    """The stage one step up; FULL stays FULL."""
    return ORDER[min(index(stage) + 1, len(ORDER) - 1)]


def adoption_stage(enabled: bool, rollout_percent: int) -> Stage:
    """The stage a new Rollout adopts a flag at.

    The highest stage whose percent does not exceed the flag's current percent,
    so creating a Rollout never widens who sees the feature.
    """
    if not enabled:
        return Stage.DISABLED
    adopted = Stage.INTERNAL
    for stage in ORDER[index(Stage.INTERNAL) :]:
        if PERCENT[stage] <= rollout_percent:
            adopted = stage
    return adopted
