"""The coalescer's spacing of flushes, on a loop whose clock only moves when asked.

looptime's event loop fast-forwards its time to the next timer whenever nothing is
ready to run, so `asyncio.sleep(0.02)` takes no wall-clock time and every timing
below is exact, however loaded the machine is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import looptime
import pytest

from flagops.controller.coalescer import Coalescer

T = TypeVar("T")
MIN, MAX = 0.02, 0.1


def run_in_loop_time(scenario: Callable[[], Awaitable[T]]) -> T:
    loop = looptime.new_event_loop(start=0)
    try:
        return loop.run_until_complete(scenario())
    finally:
        loop.close()


class FakeFlush:
    """A flush that records when it ran and what it saw, and reports `changes`."""

    def __init__(self, changes: bool = True, fail_first: int = 0) -> None:
        self.changes = changes
        self.fail_first = fail_first
        self.times: list[float] = []
        self.value = 0
        self.seen: list[int] = []

    async def __call__(self) -> bool:
        self.times.append(asyncio.get_running_loop().time())
        self.seen.append(self.value)
        if len(self.times) <= self.fail_first:
            raise RuntimeError("apiserver said no")
        return self.changes

    def gaps(self) -> list[float]:
        return [round(b - a, 6) for a, b in zip(self.times, self.times[1:], strict=False)]


async def _drain(coalescer: Coalescer) -> None:
    await asyncio.wait_for(coalescer.wait_idle(), timeout=60)


async def _request_steadily(
    coalescer: Coalescer, flush: FakeFlush, every: float, until: float
) -> None:
    """A request every `every` seconds of loop time until `until`, each a new value."""
    loop = asyncio.get_running_loop()
    while loop.time() < until:
        flush.value += 1
        coalescer.request()
        await asyncio.sleep(every)


def test_lone_request_flushes_at_once_and_once() -> None:
    async def scenario() -> FakeFlush:
        flush = FakeFlush()
        coalescer = Coalescer(flush, min_interval=MIN, max_interval=MAX)
        await asyncio.sleep(5)
        coalescer.request()
        await _drain(coalescer)
        return flush

    flush = run_in_loop_time(scenario)
    assert flush.times == [5.0]


def _steady_requests(changes: bool, until: float) -> FakeFlush:
    """A request every millisecond until `until`; the flushes report `changes`."""

    async def scenario() -> FakeFlush:
        flush = FakeFlush(changes=changes)
        coalescer = Coalescer(flush, min_interval=MIN, max_interval=MAX)
        await _request_steadily(coalescer, flush, every=0.001, until=until)
        await _drain(coalescer)
        return flush

    return run_in_loop_time(scenario)


def test_flushes_that_change_something_back_off_to_the_ceiling() -> None:
    flush = _steady_requests(changes=True, until=0.6)
    gaps = flush.gaps()
    # 0.02, 0.04, 0.08, then the 0.1 ceiling for as long as the requests keep coming.
    assert gaps[:3] == [MIN, 2 * MIN, 4 * MIN]
    assert gaps[3:] == [MAX] * len(gaps[3:])
    assert len(gaps) > 5
    assert flush.seen[-1] == flush.value  # the last change is flushed


def test_flushes_that_change_nothing_do_not_back_off() -> None:
    # The echoes of the operator's own writes must not push lone edits to the ceiling.
    gaps = _steady_requests(changes=False, until=0.3).gaps()
    assert len(gaps) > 5
    assert gaps == [MIN] * len(gaps)


def test_the_back_off_resets_after_a_quiet_spell() -> None:
    async def scenario() -> FakeFlush:
        flush = FakeFlush(changes=True)
        coalescer = Coalescer(flush, min_interval=MIN, max_interval=MAX)
        await _request_steadily(coalescer, flush, every=0.001, until=0.5)
        await _drain(coalescer)
        flush.times.clear()
        await asyncio.sleep(10)
        start = asyncio.get_running_loop().time()
        await _request_steadily(coalescer, flush, every=0.001, until=start + 0.1)
        await _drain(coalescer)
        flush.times = [t - start for t in flush.times]
        return flush

    flush = run_in_loop_time(scenario)
    assert flush.times[0] == 0.0  # a request after a quiet spell goes out at once
    assert flush.gaps()[:2] == [MIN, 2 * MIN]


def test_a_burst_at_once_is_one_flush_of_the_last_value() -> None:
    async def scenario() -> FakeFlush:
        flush = FakeFlush()
        coalescer = Coalescer(flush, min_interval=MIN, max_interval=MAX)
        for _ in range(500):
            flush.value += 1
            coalescer.request()
        await _drain(coalescer)
        return flush

    flush = run_in_loop_time(scenario)
    assert flush.seen == [500]


@pytest.mark.parametrize("failures", [1, 3])
def test_failed_flush_is_retried_with_back_off(failures: int) -> None:
    async def scenario() -> FakeFlush:
        flush = FakeFlush(changes=False, fail_first=failures)
        coalescer = Coalescer(
            flush, min_interval=MIN, max_interval=MAX, retry_initial=0.5, retry_max=1.5
        )
        coalescer.request()
        await _drain(coalescer)
        assert coalescer.failures == 0  # recovered
        return flush

    flush = run_in_loop_time(scenario)
    assert len(flush.times) == failures + 1
    # No new request meanwhile: retries wait 0.5 s, doubling, capped at 1.5 s.
    assert flush.gaps() == [0.5, 1.0, 1.5][:failures]
