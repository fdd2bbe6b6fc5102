"""The tick grid: aligned, spread per Rollout, and never carrying lateness forward."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from flagops.rollouts.ticks import MAX_SETTLE, current_tick, due_at, next_due, offset, tick_of

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
INTERVAL = timedelta(seconds=30)


def test_ticks_are_aligned_to_the_epoch() -> None:
    assert tick_of(T0 + timedelta(seconds=29.9), INTERVAL) == T0
    assert tick_of(T0 + timedelta(seconds=30), INTERVAL) == T0 + INTERVAL
    assert tick_of(T0, timedelta(seconds=7)).timestamp() % 7 == 0


def test_offsets_spread_rollouts_over_the_interval() -> None:
    offsets = [offset(f"uid-{i}", INTERVAL).total_seconds() for i in range(3000)]
    assert min(offsets) >= MAX_SETTLE.total_seconds()
    assert max(offsets) < INTERVAL.total_seconds()
    # Evenly: each of ten slices of the interval holds 7-13% of the Rollouts.
    usable = INTERVAL.total_seconds() - MAX_SETTLE.total_seconds()
    slices = [0] * 10
    for value in offsets:
        slices[int((value - MAX_SETTLE.total_seconds()) / usable * 10)] += 1
    assert all(210 <= count <= 390 for count in slices), slices


def test_offset_is_stable_and_settles_short_intervals() -> None:
    assert offset("a", INTERVAL) == offset("a", INTERVAL)
    short = timedelta(seconds=2)
    assert timedelta(seconds=0.5) <= offset("a", short) < short


@given(
    uid=st.text(min_size=1, max_size=12),
    seconds=st.floats(min_value=0, max_value=10_000),
    interval=st.integers(min_value=1, max_value=600),
)
def test_next_due_is_the_following_tick_on_the_grid(
    uid: str, seconds: float, interval: int
) -> None:
    every = timedelta(seconds=interval)
    now = T0 + timedelta(seconds=seconds)
    tick = current_tick(uid, every, now)
    assert due_at(uid, tick, every) <= now < due_at(uid, tick, every) + every
    following = next_due(uid, every, now)
    assert now < following <= now + every
    # However late `now` is, the next analysis is due on the grid.
    assert tick_of(following - offset(uid, every), every) == following - offset(uid, every)
