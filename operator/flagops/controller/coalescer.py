"""Fold bursts of change requests into few flushes, without delaying a lone change.

A request after a quiet spell is flushed at once. While requests keep coming and
flushes keep changing something, flushes are spaced by an interval that doubles up to
a ceiling, so applying
1,000 flags costs a handful of ConfigMap writes while a single edit is
published in milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


class Coalescer:
    def __init__(
        self,
        flush: Callable[[], Awaitable[bool]],
        *,
        min_interval: float,
        max_interval: float,
        settle: float = 0.0,
        name: str = "",
    ) -> None:
        self._flush = flush
        self._min_interval = min_interval
        self._max_interval = max_interval
        # A settle delay would let simultaneous events share the first flush; the doubling
        # interval already folds bursts, so by default a lone change goes out at once.
        self._settle = settle
        self._name = name
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.flushes = 0

    def request(self) -> None:
        self._dirty.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"coalescer:{self._name}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self._min_interval
        await asyncio.sleep(self._settle)
        while self._dirty.is_set():
            self._dirty.clear()
            try:
                changed = await self._flush()
            except Exception:
                # The flush reports its own errors; retrying on the next beat keeps a backoff.
                logger.exception("flush %s failed; retrying", self._name)
                self._dirty.set()
                changed = True
            self.flushes += 1
            flushed_at = loop.time()
            try:
                await asyncio.wait_for(self._dirty.wait(), timeout=interval)
            except TimeoutError:
                return
            # More changes came within the interval: wait out the rest of it, then flush them all.
            await asyncio.sleep(max(0.0, flushed_at + interval - loop.time()))
            # Only flushes that changed something count as a burst: the echoes of our own
            # writes (and other no-op events) must not push lone edits to the ceiling.
            interval = min(interval * 2, self._max_interval) if changed else self._min_interval

    async def wait_idle(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
