"""kopf's toggle sets, patched to wake waiters only when the set's state changes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from kopf._cogs.aiokits import aiotoggles

from flagops.controller.kopf_toggles import quiet_toggle_sets

OBJECTS = 300


class CountingToggleSet(aiotoggles.ToggleSet):
    """kopf's ToggleSet as it is, counting how often a waiter's check runs."""

    checks = 0

    def is_on(self) -> bool:
        type(self).checks += 1
        return super().is_on()


class QuietToggleSet(CountingToggleSet):
    checks = 0


assert quiet_toggle_sets(QuietToggleSet)


def listing(toggle_set: type[CountingToggleSet]) -> int:
    """kopf's start-up, as queueing.py does it: each listed object adds a toggle, its
    worker waits for the set, and indexing drops the toggle. Returns the checks made."""

    async def scenario() -> int:
        indexed = toggle_set(all)
        toggles = [await indexed.make_toggle(name=f"object {i}") for i in range(OBJECTS)]
        waiters = [asyncio.create_task(indexed.wait_for(True)) for _ in range(OBJECTS)]
        await asyncio.sleep(0)
        for toggle in toggles:
            await indexed.drop_toggle(toggle)
            # Objects are indexed one by one between other work (I/O): waiters run.
            await asyncio.sleep(0)
        await asyncio.wait_for(asyncio.gather(*waiters), timeout=30)
        return toggle_set.checks

    return asyncio.run(scenario())


def test_start_up_wakes_waiters_once_not_once_per_object() -> None:
    kopfs = listing(CountingToggleSet)
    quiet = listing(QuietToggleSet)
    assert kopfs > OBJECTS * OBJECTS // 2  # what the patch is for
    assert quiet < 10 * OBJECTS


def state_changes(
    toggle_set: Callable[[Callable[[Iterable[bool]], bool]], aiotoggles.ToggleSet],
) -> list[str]:
    """What waiters see through adds, drops and individual turns."""

    async def scenario() -> list[str]:
        seen: list[str] = []
        paused = toggle_set(any)

        async def wait(state: bool, label: str) -> None:
            await paused.wait_for(state)
            seen.append(label)

        on = asyncio.create_task(wait(True, "paused"))
        await asyncio.sleep(0)
        peer = await paused.make_toggle(True, name="peer")  # state off -> on
        await asyncio.wait_for(on, timeout=5)
        off = asyncio.create_task(wait(False, "resumed"))
        await asyncio.sleep(0)
        await peer.turn_to(False)  # an individual toggle turning: on -> off
        await asyncio.wait_for(off, timeout=5)
        again = asyncio.create_task(wait(True, "paused again"))
        await asyncio.sleep(0)
        other = await paused.make_toggle(False, name="other")  # no change: still off
        await peer.turn_to(True)
        await asyncio.wait_for(again, timeout=5)
        resumed = asyncio.create_task(wait(False, "resumed again"))
        await asyncio.sleep(0)
        await paused.drop_toggles([peer, other])  # on -> off (empty)
        await asyncio.wait_for(resumed, timeout=5)
        return seen

    return asyncio.run(scenario())


def test_waiters_see_every_state_change_as_with_kopfs_own() -> None:
    expected = ["paused", "resumed", "paused again", "resumed again"]
    assert state_changes(aiotoggles.ToggleSet) == expected
    assert state_changes(QuietToggleSet) == expected


def test_patching_twice_is_harmless() -> None:
    assert quiet_toggle_sets(QuietToggleSet)
    assert listing(QuietToggleSet) < 20 * OBJECTS
