"""Which status changes are worth a write. Pure.

A Rollout's status is written when something a user sees changes: the stage,
phase, verdict, conditions, an action, a probe, the counters the decision reads,
the Events to announce. An analysis that only refreshes the figures (the error
rate, the sample count, the stage totals, the message that says them) waits
for the heartbeat, so 10,000 steady Rollouts cost a few writes a second rather
than one per analysis; the figures go to metrics at once.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from flagops.api.rollout import RolloutStatus

# Refreshed by every analysis; not on their own a reason to write.
_FIGURES = ("message", "healthHistory", "stageTotals")
_ANALYSIS_FIGURES = ("time", "errorRate", "samples", "message")
_CONDITION_FIGURES = ("message", "lastTransitionTime")


class WriteReason(StrEnum):
    CHANGE = "change"
    HEARTBEAT = "heartbeat"


def visible(status: RolloutStatus) -> str:
    """What a user sees of `status`, as a comparable text."""
    seen: dict[str, Any] = status.model_dump(mode="json", by_alias=True, exclude_none=True)
    for key in _FIGURES:
        seen.pop(key, None)
    analysis = seen.get("lastAnalysis")
    if isinstance(analysis, dict):
        for key in _ANALYSIS_FIGURES:
            analysis.pop(key, None)
    for condition in seen.get("conditions") or []:
        for key in _CONDITION_FIGURES:
            condition.pop(key, None)
    return json.dumps(seen, sort_keys=True)


def write_reason(
    written: str | None,
    written_at: datetime | None,
    status: RolloutStatus,
    now: datetime,
    heartbeat: timedelta,
) -> WriteReason | None:
    """Why `status` must be written now, or None when it may wait.

    `written` is `visible()` of the last status written (None: unknown, e.g. after a
    restart), `written_at` when that was.
    """
    if written is None or visible(status) != written:
        return WriteReason.CHANGE
    if written_at is None or now - written_at >= heartbeat:
        return WriteReason.HEARTBEAT
    return None
