"""When a Rollout's analyses are due: an epoch-aligned grid, spread per Rollout. Pure.

Every Rollout with the same interval shares the grid's ticks (t = k * interval since
the epoch), so one grouped query per tick serves them all. Each Rollout takes its
analysis of tick t at t + its own offset, a stable hash of its uid, so 10,000
Rollouts created together do not all work in the same second. A round that starts
late is late for that tick only: the next one is due on the grid again.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Prometheus stores a scrape when it has finished: a tick's figures are asked for a
# moment after the tick so the scrapes just before it are in.
MAX_SETTLE = timedelta(seconds=1)


def tick_of(at: datetime, interval: timedelta) -> datetime:
    """The newest grid tick at or before `at`."""
    steps = (at - _EPOCH) // interval
    return _EPOCH + steps * interval


def offset(uid: str, interval: timedelta) -> timedelta:
    """How long after each tick this Rollout takes its analysis: in [settle, interval)."""
    settle = min(MAX_SETTLE, interval / 4)
    share = int.from_bytes(hashlib.sha256(uid.encode()).digest()[:4], "big") / 2**32
    return settle + (interval - settle) * share


def current_tick(uid: str, interval: timedelta, now: datetime) -> datetime:
    """The newest tick whose analysis is due by `now`."""
    return tick_of(now - offset(uid, interval), interval)


def due_at(uid: str, tick: datetime, interval: timedelta) -> datetime:
    """When this Rollout's analysis of `tick` is due."""
    return tick + offset(uid, interval)


def next_due(uid: str, interval: timedelta, now: datetime) -> datetime:
    """When the analysis of the tick after the current one is due (always after `now`)."""
    return due_at(uid, current_tick(uid, interval, now) + interval, interval)
