from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flagops.api.durations import format_duration, format_promql_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("60s", timedelta(seconds=60)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        ("1h1m1s1ms", timedelta(hours=1, minutes=1, seconds=1, milliseconds=1)),
        ("0s", timedelta(0)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["10 minutes", "", "10", "1.5h", "-1s", "1d", "m", "10M", " 1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(minutes=90), "1h30m"),
        (timedelta(seconds=59), "59s"),
        (timedelta(milliseconds=1500), "1s500ms"),
        (timedelta(0), "0s"),
        (timedelta(days=2), "48h"),
    ],
)
def test_format_duration(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=59, milliseconds=900), "59s"),
        (timedelta(minutes=3), "3m"),
        (timedelta(seconds=190), "3m10s"),
        (timedelta(hours=2, minutes=5), "2h5m"),
        (timedelta(hours=2, minutes=5, seconds=10), "2h5m10s"),
        (timedelta(hours=1), "1h"),
        (timedelta(seconds=-5), "0s"),
    ],
)
def test_format_duration_in_whole_seconds_for_messages(delta: timedelta, text: str) -> None:
    assert format_duration(delta, whole_seconds=True) == text


def test_promql_duration() -> None:
    assert format_promql_duration(timedelta(minutes=1)) == "1m"
    assert format_promql_duration(timedelta(minutes=12, seconds=3)) == "12m3s"
    with pytest.raises(ValueError, match="longer than zero"):
        format_promql_duration(timedelta(0))
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


@given(st.integers(min_value=0, max_value=10**10))
def test_format_and_parse_round_trip(millis: int) -> None:
    delta = timedelta(milliseconds=millis)
    assert parse_duration(format_duration(delta)) == delta
