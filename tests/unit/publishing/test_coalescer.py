from __future__ import annotations

import asyncio

from flagops.controller.coalescer import Coalescer


async def _drain(coalescer: Coalescer) -> None:
    await asyncio.wait_for(coalescer.wait_idle(), timeout=10)


def test_lone_request_flushes_once() -> None:
    async def scenario() -> int:
        calls = 0

        async def flush() -> None:
            nonlocal calls
            calls += 1

        coalescer = Coalescer(flush, min_interval=0.05, max_interval=0.2, settle=0)
        coalescer.request()
        await _drain(coalescer)
        return calls

    assert asyncio.run(scenario()) == 1


def test_burst_is_folded_into_few_flushes_and_the_last_change_is_flushed() -> None:
    async def scenario() -> tuple[int, int, int]:
        state = {"value": 0, "seen": -1, "flushes": 0}

        async def flush() -> None:
            state["seen"] = state["value"]
            state["flushes"] += 1

        coalescer = Coalescer(flush, min_interval=0.02, max_interval=0.1, settle=0)
        for i in range(1, 501):
            state["value"] = i
            coalescer.request()
            if i % 50 == 0:
                await asyncio.sleep(
                    0.01
                )  # let the loop run: requests arrive over time, not at once
        await _drain(coalescer)
        return state["seen"], state["flushes"], 500

    seen, flushes, last = asyncio.run(scenario())
    assert seen == last
    assert flushes <= 6


def test_failed_flush_is_retried() -> None:
    async def scenario() -> int:
        attempts = 0

        async def flush() -> None:
            nonlocal attempts
            attempts += 1
            if attempts == 1:
                raise RuntimeError("apiserver said no")

        coalescer = Coalescer(flush, min_interval=0.01, max_interval=0.02, settle=0)
        coalescer.request()
        await _drain(coalescer)
        return attempts

    assert asyncio.run(scenario()) == 2
