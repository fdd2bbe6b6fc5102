"""Status writes: on what a user sees, or on the heartbeat; never for figures alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flagops.api.rollout import RolloutStatus
from flagops.rollouts.visibility import WriteReason, visible, write_reason

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HEARTBEAT = timedelta(minutes=5)


def status(**kw: Any) -> RolloutStatus:
    base: dict[str, Any] = {
        "stage": "BETA",
        "phase": "Progressing",
        "message": "error rate 1.00% over 100 operations",
        "consecutiveFailures": 0,
        "lastAnalysis": {
            "time": "2026-01-01T11:59:30Z",
            "verdict": "Pass",
            "errorRate": 0.01,
            "samples": 100,
        },
        "conditions": [
            {
                "type": "Healthy",
                "status": "True",
                "reason": "AnalysisPassed",
                "message": "error rate 1.00%",
                "lastTransitionTime": "2026-01-01T11:00:00Z",
            }
        ],
        "stageTotals": {
            "stage": "BETA",
            "since": "2026-01-01T11:00:00Z",
            "through": "2026-01-01T11:59:30Z",
            "operations": 100,
            "errors": 1,
        },
    }
    return RolloutStatus.model_validate({**base, **kw})


WRITTEN = visible(status())
FIGURES_ONLY = status(
    message="error rate 2.00% over 150 operations",
    lastAnalysis={
        "time": "2026-01-01T12:00:00Z",
        "verdict": "Pass",
        "errorRate": 0.02,
        "samples": 150,
    },
    conditions=[
        {
            "type": "Healthy",
            "status": "True",
            "reason": "AnalysisPassed",
            "message": "error rate 2.00%",
            "lastTransitionTime": "2026-01-01T12:00:00Z",
        }
    ],
    stageTotals={
        "stage": "BETA",
        "since": "2026-01-01T11:00:00Z",
        "through": "2026-01-01T12:00:00Z",
        "operations": 150,
        "errors": 3,
    },
    healthHistory=[{"time": "2026-01-01T12:00:00Z", "source": "Analysis", "verdict": "Pass"}],
)


def test_new_figures_wait_for_the_heartbeat() -> None:
    assert write_reason(WRITTEN, T0, FIGURES_ONLY, T0 + timedelta(minutes=4), HEARTBEAT) is None
    assert (
        write_reason(WRITTEN, T0, FIGURES_ONLY, T0 + HEARTBEAT, HEARTBEAT) is WriteReason.HEARTBEAT
    )


@pytest.mark.parametrize(
    "change",
    [
        {"stage": "EARLY_ACCESS"},
        {"phase": "Paused"},
        {"consecutiveFailures": 1},
        {"lastAnalysis": {"time": "2026-01-01T12:00:00Z", "verdict": "Fail"}},
        {
            "conditions": [
                {
                    "type": "Healthy",
                    "status": "False",
                    "reason": "AnalysisFailed",
                    "lastTransitionTime": "2026-01-01T12:00:00Z",
                }
            ]
        },
        {
            "lastAction": {
                "name": "pause",
                "id": "1",
                "at": "2026-01-01T12:00:00Z",
                "result": "Succeeded",
            }
        },
        {
            "pendingEvents": [
                {
                    "sequence": 1,
                    "type": "Normal",
                    "reason": "StageAdvanced",
                    "message": "m",
                    "time": "2026-01-01T12:00:00Z",
                }
            ]
        },
    ],
)
def test_what_a_user_sees_is_written_at_once(change: dict[str, Any]) -> None:
    assert write_reason(WRITTEN, T0, status(**change), T0, HEARTBEAT) is WriteReason.CHANGE


def test_unknown_last_write_writes_and_zero_heartbeat_always_writes() -> None:
    assert write_reason(None, None, status(), T0, HEARTBEAT) is WriteReason.CHANGE
    assert write_reason(WRITTEN, T0, status(), T0, timedelta(0)) is WriteReason.HEARTBEAT
