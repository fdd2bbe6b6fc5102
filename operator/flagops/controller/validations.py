"""Query validation, shared: one Prometheus request per distinct (address, query).

Every Rollout on the default templates asks Prometheus whether the same few queries
parse and answer. A check that is under way is awaited by every round that asks for
it (so 10,000 Rollouts created at once send a handful, not 20,000), and a check
that passed is remembered for `memory` seconds. A failed check is not remembered:
the next round asks again, as Prometheus may answer by then.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from flagops.controller import metrics
from flagops.controller.querying import in_query_thread
from flagops.rollouts.measure import QueryCheck


class Validations:
    def __init__(self, memory: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._memory = memory
        self._clock = clock
        self._passed: dict[tuple[str, str], float] = {}
        self._running: dict[tuple[str, str], asyncio.Task[QueryCheck]] = {}

    async def check(self, key: tuple[str, str], run: Callable[[], QueryCheck]) -> QueryCheck:
        """The check of `key` (address, rendered query): remembered, shared, or run now
        (`run` is blocking and runs in a thread)."""
        passed_at = self._passed.get(key)
        if passed_at is not None and self._clock() - passed_at < self._memory:
            return QueryCheck(ok=True, message="query parses and answers", parses=True)
        task = self._running.get(key)
        if task is None:
            metrics.ANALYSIS_QUERIES.labels("validate").inc()
            task = asyncio.create_task(in_query_thread(run))
            self._running[key] = task
            task.add_done_callback(lambda done: self._settle(key, done))
        # Shielded: one round being cancelled must not cancel the check others await.
        return await asyncio.shield(task)

    def _settle(self, key: tuple[str, str], task: asyncio.Task[QueryCheck]) -> None:
        self._running.pop(key, None)
        if not task.cancelled() and task.exception() is None and task.result().ok:
            self._passed[key] = self._clock()
