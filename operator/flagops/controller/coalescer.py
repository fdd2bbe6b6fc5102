"""Fold bursts of change requests into few flushes, without delaying a lone change.

A request after a quiet spell is flushed at once. While requests keep coming and
flushes keep changing something, flushes are spaced by an interval that doubles up to
a ceiling, so applying
1,000 flags costs a handful of ConfigMap writes while a single edit is
published in milliseconds.

A failed flush is retried after `retry_initial` seconds, doubling up to `retry_max`
(a new request retries sooner, at the burst pace), and logged once per change of
failure, not once per attempt. Each namespace has its own coalescer, so one
namespace's failures never hold up another's.
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
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        expected: tuple[type[Exception], ...] = (),
        name: str = "",
    ) -> None:
        self._flush = flush
        self._min_interval = min_interval
        self._max_interval = max_interval
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        # Failures the flush describes itself: one line, no traceback.
        self._expected = expected
        self._name = name
        # Consecutive failed flushes, and the last failure's description (logged on change).
        self.failures = 0
        self._failure: str | None = None
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def request(self) -> None:
        self._dirty.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"coalescer:{self._name}")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self._min_interval
        while self._dirty.is_set():
            self._dirty.clear()
            # Flushes are spaced from their starts: a long flush (a thousand status
            # patches) must not add its own duration to the next change's wait.
            started_at = loop.time()
            try:
                changed = await self._flush()
            except Exception as exc:
                delay = self._failed(exc)
                try:
                    await asyncio.wait_for(self._dirty.wait(), timeout=delay)
                except TimeoutError:
                    self._dirty.set()
                    continue
                # A new change came: retry it at the burst pace, not the failure's.
                interval = min(interval * 2, self._max_interval)
                await asyncio.sleep(interval)
                continue
            self._recovered()
            flushed_at = started_at
            try:
                await asyncio.wait_for(self._dirty.wait(), timeout=interval)
            except TimeoutError:
                # A request that came while wait_for was cancelling its waiter found this
                # task not yet done and started none: flush it here, or it is lost.
                if self._dirty.is_set():
                    continue
                return
            # More changes came within the interval: wait out the rest of it, then flush them all.
            await asyncio.sleep(max(0.0, flushed_at + interval - loop.time()))
            # Only flushes that changed something count as a burst: the echoes of our own
            # writes (and other no-op events) must not push lone edits to the ceiling.
            interval = min(interval * 2, self._max_interval) if changed else self._min_interval

    def _failed(self, exc: Exception) -> float:
        """Log a new kind of failure once; the delay before the next attempt."""
        self.failures += 1
        delay: float = min(self._retry_initial * 2.0 ** (self.failures - 1), self._retry_max)
        description = f"{type(exc).__name__}: {exc}"
        if description != self._failure:
            self._failure = description
            # A failure the flush did not describe is a bug: its traceback, once.
            logger.warning(
                "publishing %s failed, retrying with back-off up to %gs: %s",
                self._name,
                self._retry_max,
                exc if isinstance(exc, self._expected) else description,
                exc_info=not isinstance(exc, self._expected),
            )
        return delay

    def _recovered(self) -> None:
        if self.failures:
            logger.info(
                "publishing %s recovered after %d failed attempt(s)", self._name, self.failures
            )
        self.failures = 0
        self._failure = None

    async def wait_idle(self) -> None:
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
