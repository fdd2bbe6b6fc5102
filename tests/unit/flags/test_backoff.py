"""The reconnect back-off: capped exponential ceilings, jitter in the upper half, resets."""

from __future__ import annotations

import itertools
import random

import pytest

from flagops.flags import Backoff


def test_ceilings_double_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.5, cap=30.0, rng=lambda: 1.0)
    waits = [backoff.next() for _ in range(10)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_jitter_spans_the_upper_half() -> None:
    low = Backoff(initial=1.0, cap=8.0, rng=lambda: 0.0)
    assert [low.next() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    rng = random.Random(7)
    spread = Backoff(initial=1.0, cap=8.0, rng=rng.random)
    for ceiling in (1.0, 2.0, 4.0, 8.0, 8.0):
        wait = spread.next()
        assert ceiling / 2 <= wait <= ceiling


def test_jitter_spreads_clients_dropped_together() -> None:
    rng = random.Random(11)
    first_waits = {round(Backoff(initial=1.0, rng=rng.random).next(), 3) for _ in range(50)}
    assert len(first_waits) > 40  # not one thundering herd


def test_reset_starts_over() -> None:
    backoff = Backoff(initial=0.25, cap=4.0, rng=lambda: 1.0)
    assert [backoff.next() for _ in range(3)] == [0.25, 0.5, 1.0]
    backoff.reset()
    assert backoff.next() == 0.25


def test_server_retry_sets_the_start_within_the_cap() -> None:
    backoff = Backoff(initial=0.5, cap=10.0, rng=lambda: 1.0)
    backoff.set_initial(3.0)
    assert [backoff.next() for _ in range(3)] == [3.0, 6.0, 10.0]
    backoff.set_initial(60.0)
    backoff.reset()
    assert backoff.next() == 10.0
    backoff.set_initial(-1)
    backoff.reset()
    assert backoff.next() == 0.0


def test_a_long_outage_never_overflows() -> None:
    backoff = Backoff(initial=0.5, cap=30.0, rng=lambda: 1.0)
    for wait in itertools.islice(iter(backoff.next, None), 5000):
        assert wait <= 30.0
    assert backoff.next() == 30.0


@pytest.mark.parametrize(
    ("initial", "cap", "factor"), [(-1.0, 1.0, 2.0), (2.0, 1.0, 2.0), (0.5, 1.0, 0.5)]
)
def test_nonsense_is_refused(initial: float, cap: float, factor: float) -> None:
    with pytest.raises(ValueError, match="back-off"):
        Backoff(initial=initial, cap=cap, factor=factor)
