"""Properties of the bucketing: monotone in the percent, and fair across users."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from flagops.flags import evaluate
from flagops.flags.evaluate import bucket

NOW = datetime(2026, 6, 1, tzinfo=UTC)
USERS = [f"user-{i}" for i in range(100_000)]


def _state(percent: int) -> dict[str, object]:
    return {"enabled": True, "rolloutPercent": percent, "allowedCohorts": []}


@given(
    key=st.text(min_size=1, max_size=40),
    user=st.text(max_size=40),
    low=st.integers(0, 100),
    high=st.integers(0, 100),
)
def test_raising_the_percent_never_turns_a_user_off(
    key: str, user: str, low: int, high: int
) -> None:
    low, high = min(low, high), max(low, high)
    if evaluate(_state(low), key, user, now=NOW):
        assert evaluate(_state(high), key, user, now=NOW)


@settings(max_examples=8, deadline=None)
@given(key=st.from_regex(r"[a-z][a-z0-9_.-]{0,30}", fullmatch=True))
def test_enabled_share_of_100000_users_is_within_one_point(key: str) -> None:
    buckets = [bucket(key, user) for user in USERS]
    for percent in (1, 10, 25, 50, 75, 99):
        share = 100 * sum(1 for b in buckets if b <= percent) / len(USERS)
        assert abs(share - percent) <= 1, (key, percent, share)


def test_share_for_the_default_flag_key() -> None:
    buckets = [bucket("calendar_sync", user) for user in USERS]
    assert set(buckets) == set(range(1, 101))
    for percent in (0, 1, 10, 25, 50, 99, 100):
        share = 100 * sum(1 for b in buckets if b <= percent) / len(USERS)
        assert abs(share - percent) <= 1
