"""A standby replica: it watches, indexes and keeps what the active one does, and acts on
nothing until kopf's peering makes it the active one.

Out of the box kopf stops a paused replica's watch streams, so a takeover began by
listing and indexing every object again: 44.6 s before the first analysis with 5,000
Rollouts, for a peer that kopf saw gone after 4 s. Like controller-runtime, which keeps a
standby's informer caches warm and starts only the reconcilers on election, flagops keeps
the streams running (controller/kopf_pause.py) and holds back here whatever acts: Rollout
rounds, publishing, the Events a deletion announces. Each part that acts implements
`Pausable`; `Standby` tells every part when this replica pauses and resumes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from kopf._cogs.aiokits import aiotoggles

logger = logging.getLogger(__name__)


class Pausable(Protocol):
    def pause(self) -> None:
        """Stop acting; keep following the watch."""

    def resume(self) -> None:
        """Act again, on everything seen meanwhile."""


class Standby:
    def __init__(self) -> None:
        self._toggles: aiotoggles.ToggleSet | None = None
        self._parts: list[Pausable] = []
        self._paused = False
        self._following: asyncio.Task[None] | None = None

    def add(self, part: Pausable) -> None:
        self._parts.append(part)

    @property
    def paused(self) -> bool:
        return self._paused

    def follow(self, toggles: aiotoggles.ToggleSet) -> None:
        """Pause with kopf: `toggles` is its `operator_paused`, handed over at each start.

        Called before kopf starts any watch stream, and a replica starts paused until
        peering has seen its peers: the parts are told at once, so no event acts early.
        """
        self._toggles = toggles
        if toggles.is_on():
            self._pause()
        if self._following is not None:
            self._following.cancel()
        self._following = asyncio.create_task(self._follow(toggles), name="standby")

    async def _follow(self, toggles: aiotoggles.ToggleSet) -> None:
        while True:
            await toggles.wait_for(True)
            self._pause()
            await toggles.wait_for(False)
            self._resume()

    def _pause(self) -> None:
        if self._paused:
            return
        self._paused = True
        logger.info("standby: another replica is active; watching, acting on nothing")
        for part in self._parts:
            part.pause()

    def _resume(self) -> None:
        if not self._paused:
            return
        self._paused = False
        for part in self._parts:
            part.resume()
        logger.info("active: Rollout rounds and publishing run here")

    async def close(self) -> None:
        if self._following is not None:
            self._following.cancel()
        self._following = None
