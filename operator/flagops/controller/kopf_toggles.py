"""kopf's toggle sets wake their waiters only when the set's state changes.

On start-up, and whenever a standby replica takes over, kopf lists every object and
holds each one's handlers until all indexes are filled: each object adds a toggle to
the `operator_indexed` set and drops it once indexed, and its worker then waits for the
whole set to turn on. kopf's `ToggleSet` wakes *every* waiter on every added or dropped
toggle, so N objects cost about N x N wake-ups before the first handler runs: a standby
taking over 1,000 Rollouts and 1,000 flags spent 13 s in them (py-spy:
`Condition.notify_all` under `ToggleSet.make_toggle`), and 10,000 of each would take
about a hundred times as long.

A waiter waits for the set's state (`is_on()`), and adding or dropping a toggle can only
change what it waits for when it changes that state. So the set notifies only then.
Toggles turned on or off one by one (`Toggle.turn_to`) notify as before.

This patches a private class of kopf (`kopf._cogs.aiokits.aiotoggles.ToggleSet`), so it
checks the class still has the shape it was written against, and leaves kopf alone
(with a warning) when it does not; tests/unit/controller/test_kopf_toggles.py holds it
to kopf's behaviour.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from kopf._cogs.aiokits import aiotoggles

logger = logging.getLogger(__name__)

_PATCHED = "_flagops_quiet"


def quiet_toggle_sets(toggle_set: Any = aiotoggles.ToggleSet) -> bool:
    """Make kopf's toggle sets notify on state changes only; False if left as they were."""
    if getattr(toggle_set, _PATCHED, False):
        return True
    probe = toggle_set(all)
    if not all(hasattr(probe, name) for name in ("_condition", "_toggles", "is_on")):
        logger.warning("kopf's ToggleSet has changed shape; its waiters are left as kopf has them")
        return False

    async def make_toggle(
        self: Any, __val: bool = False, *, name: str | None = None
    ) -> aiotoggles.Toggle:
        toggle = aiotoggles.Toggle(__val, name=name, condition=self._condition)
        async with self._condition:
            before = self.is_on()
            self._toggles.add(toggle)
            if self.is_on() != before:
                self._condition.notify_all()
        return toggle

    async def drop_toggle(self: Any, toggle: aiotoggles.Toggle) -> None:
        await drop_toggles(self, (toggle,))

    async def drop_toggles(self: Any, toggles: Iterable[aiotoggles.Toggle]) -> None:
        async with self._condition:
            before = self.is_on()
            self._toggles.difference_update(toggles)
            if self.is_on() != before:
                self._condition.notify_all()

    toggle_set.make_toggle = make_toggle
    toggle_set.drop_toggle = drop_toggle
    toggle_set.drop_toggles = drop_toggles
    setattr(toggle_set, _PATCHED, True)
    return True
