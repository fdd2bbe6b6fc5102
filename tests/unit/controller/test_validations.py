"""Query validation is shared while under way, remembered when it passed, retried when not."""

from __future__ import annotations

import asyncio
import threading

from flagops.controller.validations import Validations
from flagops.rollouts.measure import QueryCheck

KEY = ("http://prometheus:9090", "sum(rate(x[1m]))")
PASSED = QueryCheck(ok=True, message="query parses and answers", parses=True)
UNREACHABLE = QueryCheck(ok=False, message="Prometheus unreachable", parses=True)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class GatedCheck:
    """A fake check that blocks until released, counting how often it ran."""

    def __init__(self, answer: QueryCheck) -> None:
        self.answer = answer
        self.runs = 0
        self.release = threading.Event()

    def __call__(self) -> QueryCheck:
        self.runs += 1
        assert self.release.wait(timeout=10), "never released"
        return self.answer


def test_concurrent_rounds_share_one_check() -> None:
    async def scenario() -> list[QueryCheck]:
        validations = Validations(memory=600)
        run = GatedCheck(PASSED)
        rounds = [asyncio.create_task(validations.check(KEY, run)) for _ in range(500)]
        await asyncio.sleep(0)  # every round has asked before the answer comes
        run.release.set()
        results = await asyncio.gather(*rounds)
        assert run.runs == 1
        return results

    assert set(asyncio.run(scenario())) == {PASSED}


def test_a_passed_check_is_remembered_for_its_memory_only() -> None:
    async def scenario() -> int:
        clock = FakeClock()
        validations = Validations(memory=600, clock=clock)
        run = GatedCheck(PASSED)
        run.release.set()
        await validations.check(KEY, run)
        clock.now = 599
        assert (await validations.check(KEY, run)).ok
        clock.now = 601
        await validations.check(KEY, run)
        return run.runs

    assert asyncio.run(scenario()) == 2


def test_a_failed_check_is_asked_again_next_round() -> None:
    async def scenario() -> int:
        validations = Validations(memory=600)
        run = GatedCheck(UNREACHABLE)
        run.release.set()
        assert not (await validations.check(KEY, run)).ok
        assert not (await validations.check(KEY, run)).ok
        return run.runs

    assert asyncio.run(scenario()) == 2


def test_a_cancelled_round_does_not_cancel_the_check_others_await() -> None:
    async def scenario() -> QueryCheck:
        validations = Validations(memory=600)
        run = GatedCheck(PASSED)
        first = asyncio.create_task(validations.check(KEY, run))
        second = asyncio.create_task(validations.check(KEY, run))
        await asyncio.sleep(0)
        first.cancel()
        run.release.set()
        return await second

    assert asyncio.run(scenario()) == PASSED
