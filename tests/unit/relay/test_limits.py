"""Token buckets and stream caps, on a clock the test moves."""

from __future__ import annotations

from flagops.relay.limits import RateLimiter, StreamCounter, retry_after_header


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_the_rate_and_a_retry_after_that_is_honest() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock)
    assert all(limiter.acquire("k", rate=2, burst=3) == 0 for _ in range(3))
    wait = limiter.acquire("k", rate=2, burst=3)
    assert 0.49 < wait <= 0.5
    assert retry_after_header(wait) == b"1"
    clock.now += wait
    assert limiter.acquire("k", rate=2, burst=3) == 0
    # Another key has its own bucket.
    assert limiter.acquire("other", rate=2, burst=3) == 0
    # Idle time refills up to the burst, not beyond.
    clock.now += 1000
    assert all(limiter.acquire("k", rate=2, burst=3) == 0 for _ in range(3))
    assert limiter.acquire("k", rate=2, burst=3) > 0
    limiter.forget_except({"other"})
    assert limiter.acquire("k", rate=2, burst=3) == 0


def test_stream_cap_per_key() -> None:
    streams = StreamCounter()
    assert streams.try_open("k", 2) and streams.try_open("k", 2)
    assert not streams.try_open("k", 2)
    assert streams.try_open("j", 2)
    streams.close("k")
    assert streams.open_count("k") == 1
    assert streams.try_open("k", 2)
    assert not streams.try_open("z", 0)
