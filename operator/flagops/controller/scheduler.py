"""One scheduler runs every Rollout's rounds: a timer per Rollout on the event loop.

A kopf daemon per Rollout kept a task, a logger, a stopper and the object's whole last
body alive for each of them (about 100 KiB a Rollout at 10,000); here a Rollout costs
one `asyncio.TimerHandle` while it waits, and a task only while its round runs. The
event loop's own timer heap does the ordering.

Each key runs one round at a time. A key woken while its round runs gets another round
right after it, so a change that arrives mid-round is never lost. At most `limit` rounds
run at once: a takeover makes every Rollout due at the same moment, and the rest wait
their turn in order.

Paused (another replica is active), the scheduler knows no keys and runs nothing:
whoever feeds it tracks them again from the watch's relisting once it resumes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)

# A round that raised is tried again after this long (seconds).
RETRY_AFTER = 5.0

Round = Callable[[str], Awaitable[float | None]]


class RoundScheduler:
    """Runs `run_round(key)` for each scheduled key when it is due. The round returns
    the delay until its key's next round, or None when the key needs no more rounds."""

    def __init__(self, run_round: Round, *, limit: int = 64) -> None:
        self._run_round = run_round
        self._limit = limit
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._ready: collections.deque[str] = collections.deque()
        self._queued: set[str] = set()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._paused = False

    @property
    def paused(self) -> bool:
        return self._paused

    def __len__(self) -> int:
        """How many keys have a round pending or running."""
        return len(self._timers) + len(self._queued) + len(self._running)

    def schedule(self, key: str, delay: float = 0.0) -> None:
        """A round of `key` in `delay` seconds, unless one is due sooner already."""
        if self._paused:
            return
        if key in self._running:
            if delay <= 0:
                self._again.add(key)
            return
        if key in self._queued:
            return
        loop = asyncio.get_running_loop()
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= loop.time() + delay:
                return
            timer.cancel()
        if delay <= 0:
            self._timers.pop(key, None)
            self._enqueue(key)
        else:
            self._timers[key] = loop.call_later(delay, self._due, key)

    def remove(self, key: str) -> None:
        """No more rounds of `key`; a round under way is cancelled."""
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if key in self._queued:
            self._queued.discard(key)
            self._ready.remove(key)
        self._again.discard(key)
        task = self._running.pop(key, None)
        if task is not None:
            task.cancel()
        self._start_ready()

    def pause(self) -> None:
        """Forget every key and cancel the rounds under way."""
        self._paused = True
        self.clear()

    def resume(self) -> None:
        self._paused = False

    def clear(self) -> None:
        for key in [*self._timers, *self._queued, *self._running]:
            self.remove(key)

    # --- running ------------------------------------------------------------------------

    def _due(self, key: str) -> None:
        if self._timers.pop(key, None) is not None:
            self._enqueue(key)

    def _enqueue(self, key: str) -> None:
        self._queued.add(key)
        self._ready.append(key)
        self._start_ready()

    def _start_ready(self) -> None:
        while not self._paused and self._ready and len(self._running) < self._limit:
            key = self._ready.popleft()
            self._queued.discard(key)
            self._running[key] = asyncio.create_task(self._round(key), name=f"round {key}")

    async def _round(self, key: str) -> None:
        delay: float | None
        try:
            delay = await self._run_round(key)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The round logs what it knows; this only keeps the key alive.
            logger.exception("round of %s failed", key)
            delay = RETRY_AFTER
        if self._running.get(key) is not asyncio.current_task():
            return  # removed meanwhile
        del self._running[key]
        if key in self._again:
            self._again.discard(key)
            delay = 0.0
        if delay is not None:
            self.schedule(key, delay)
        self._start_ready()
