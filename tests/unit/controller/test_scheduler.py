"""The Rollout round scheduler: due order, one round per key at a time, wake-ups that
arrive mid-round, removal, the concurrency bound and pausing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from flagops.controller.scheduler import RoundScheduler

DEADLINE = 5.0


async def until(condition: Callable[[], bool], message: str) -> None:
    async with asyncio.timeout(DEADLINE):
        while not condition():
            await asyncio.sleep(0.005)
    assert condition(), message


class Rounds:
    """Records each round; a round waits for `gate` when one is set for its key."""

    def __init__(self, delay: float | None = None) -> None:
        self.ran: list[str] = []
        self.running: set[str] = set()
        self.most_at_once = 0
        self.delay = delay
        self.gates: dict[str, asyncio.Event] = {}
        self.fail: set[str] = set()

    async def __call__(self, key: str) -> float | None:
        self.running.add(key)
        self.most_at_once = max(self.most_at_once, len(self.running))
        try:
            gate = self.gates.get(key)
            if gate is not None:
                await gate.wait()
            self.ran.append(key)
            if key in self.fail:
                raise RuntimeError("round failed")
            return self.delay
        finally:
            self.running.discard(key)


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_keys_run_in_order_of_due_time_and_again_after_their_delay() -> None:
    async def scenario() -> None:
        rounds = Rounds(delay=0.05)
        scheduler = RoundScheduler(rounds)
        scheduler.schedule("late", 0.04)
        scheduler.schedule("early", 0.01)
        await until(lambda: len(rounds.ran) >= 2, "both ran")
        assert rounds.ran[:2] == ["early", "late"]
        await until(lambda: rounds.ran.count("early") >= 2, "early ran again")
        scheduler.clear()

    run(scenario)


def test_an_earlier_schedule_wins_and_a_later_one_does_not_postpone() -> None:
    async def scenario() -> None:
        rounds = Rounds()
        scheduler = RoundScheduler(rounds)
        scheduler.schedule("k", 30.0)
        scheduler.schedule("k", 60.0)  # later: ignored
        assert rounds.ran == []
        scheduler.schedule("k", 0.0)  # sooner: now
        await until(lambda: rounds.ran == ["k"], "ran at once")
        assert len(scheduler) == 0  # None: no next round

    run(scenario)


def test_a_wake_during_a_round_runs_another_round_right_after() -> None:
    async def scenario() -> None:
        rounds = Rounds(delay=3600.0)
        rounds.gates["k"] = asyncio.Event()
        scheduler = RoundScheduler(rounds)
        scheduler.schedule("k")
        await until(lambda: "k" in rounds.running, "round started")
        scheduler.schedule("k")  # a spec change mid-round
        scheduler.schedule("k", 10.0)  # and a later wish: no effect
        rounds.gates["k"].set()
        await until(lambda: rounds.ran == ["k", "k"], "ran twice, one after the other")
        assert rounds.most_at_once == 1
        scheduler.clear()

    run(scenario)


def test_removal_cancels_a_pending_or_running_round() -> None:
    async def scenario() -> None:
        rounds = Rounds(delay=0.01)
        rounds.gates["busy"] = asyncio.Event()
        scheduler = RoundScheduler(rounds)
        scheduler.schedule("busy")
        scheduler.schedule("waiting", 0.05)
        await until(lambda: "busy" in rounds.running, "round started")
        scheduler.remove("busy")
        scheduler.remove("waiting")
        await until(lambda: not rounds.running, "cancelled")
        assert len(scheduler) == 0
        scheduler.schedule("other")
        await until(lambda: rounds.ran == ["other"], "others still run")
        scheduler.clear()

    run(scenario)


def test_no_more_than_the_limit_run_at_once_and_the_rest_wait_in_order() -> None:
    async def scenario() -> None:
        rounds = Rounds()
        gate = asyncio.Event()
        keys = [f"k{i}" for i in range(10)]
        rounds.gates = dict.fromkeys(keys, gate)
        scheduler = RoundScheduler(rounds, limit=3)
        for key in keys:
            scheduler.schedule(key)
        await until(lambda: len(rounds.running) == 3, "three started")
        gate.set()
        await until(lambda: len(rounds.ran) == 10, "all ran")
        assert rounds.most_at_once == 3
        assert rounds.ran[:3] == keys[:3]

    run(scenario)


def test_a_failing_round_is_retried_and_does_not_stop_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("flagops.controller.scheduler.RETRY_AFTER", 0.01)

    async def scenario() -> None:
        rounds = Rounds()
        rounds.fail.add("bad")
        scheduler = RoundScheduler(rounds)
        scheduler.schedule("bad")
        scheduler.schedule("good")
        await until(lambda: rounds.ran.count("bad") >= 3, "bad retried")
        assert rounds.ran.count("good") == 1
        scheduler.clear()

    run(scenario)


def test_paused_it_forgets_every_key_and_takes_none_until_resumed() -> None:
    async def scenario() -> None:
        rounds = Rounds(delay=0.01)
        rounds.gates["busy"] = asyncio.Event()
        scheduler = RoundScheduler(rounds)
        scheduler.schedule("busy")
        scheduler.schedule("later", 0.02)
        await until(lambda: "busy" in rounds.running, "round started")
        scheduler.pause()
        scheduler.schedule("during")
        await until(lambda: not rounds.running, "running round cancelled")
        assert len(scheduler) == 0 and scheduler.paused
        scheduler.resume()
        scheduler.schedule("after")
        await until(lambda: "after" in rounds.ran, "runs again once resumed")
        assert "during" not in rounds.ran and "later" not in rounds.ran
        scheduler.clear()

    run(scenario)
