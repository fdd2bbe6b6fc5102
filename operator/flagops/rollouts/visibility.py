"""Which status changes are worth a write. Pure.

A Rollout's status is written when something a user sees changes: the stage,
phase, verdict, conditions, an action, a probe, the counters the decision reads,
the Events to announce. An analysis that only refreshes the figures (the error
rate, the sample count, the stage totals, the message that says them) waits
for the heartbeat, so 10,000 steady Rollouts cost a few writes a second rather
than one per analysis; the figures go to metrics at once.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from flagops.api.rollout import RolloutStatus

# Refreshed by every analysis; not on their own a reason to write.
_FIGURES: dict[str, Any] = {
    "message": True,
    "health_history": True,
    "stage_totals": True,
    "last_analysis": {"time", "error_rate", "samples", "message"},
    "conditions": {"__all__": {"message", "last_transition_time"}},
}


class WriteReason(StrEnum):
    CHANGE = "change"
    HEARTBEAT = "heartbeat"


def visible(status: RolloutStatus) -> bytes:
    """A digest of what a user sees of `status`, comparable with ==: everything but the
    figures, so a field added later counts as visible until it is named here. A digest,
    not the fields: the operator keeps one per Rollout (16 bytes where the fields took
    about a kilobyte)."""
    seen = status.model_dump_json(exclude=_FIGURES).encode()
    return hashlib.blake2b(seen, digest_size=16).digest()


def write_reason(
    written: bytes | None,
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
