"""Grouped analysis queries, shared: one Prometheus request per (address, window, tick).

Every Rollout on the same Prometheus whose totals run to the previous tick asks for
the same window at the same tick, so the first to ask sends the query and the rest
await its answer. A Rollout catching up after a gap asks for a longer window; those
with the same gap share that one too.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flagops.controller import metrics
from flagops.rollouts import measure
from flagops.rollouts.prometheus import QueryFailed
from flagops.rollouts.totals import Counts

# Answers older than this many of their own windows are dropped from the memo.
_KEEP_WINDOWS = 3


@dataclass(frozen=True)
class GroupedAnswer:
    counts: dict[str, Counts]
    failure: str | None = None  # why there are no counts (a safe message)


class GroupedQueries:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._answers: dict[tuple[str, int, datetime], asyncio.Task[GroupedAnswer]] = {}

    async def counts(
        self, address: str, window: timedelta, at: datetime, interval: timedelta
    ) -> GroupedAnswer:
        """Every integration's counts in (at - window, at] on Prometheus `address`."""
        key = (address, window // timedelta(milliseconds=1), at)
        task = self._answers.get(key)
        if task is None:
            kind = "grouped" if window == interval else "catchup"
            task = asyncio.create_task(self._ask(address, window, at, kind))
            self._answers[key] = task
            self._forget_before(at - _KEEP_WINDOWS * max(window, interval))
        # A shielded await: one Rollout's round being cancelled must not cancel the
        # query the others are waiting for.
        return await asyncio.shield(task)

    async def _ask(self, address: str, window: timedelta, at: datetime, kind: str) -> GroupedAnswer:
        client = measure.prometheus_client(address, self._timeout)
        metrics.ANALYSIS_QUERIES.labels(kind).inc()
        started = time.perf_counter()
        try:
            counts = await asyncio.to_thread(
                measure.measure_counts, client, window, at, self._timeout, address
            )
            return GroupedAnswer(counts)
        except QueryFailed as exc:
            return GroupedAnswer({}, str(exc))
        except Exception as exc:  # an analysis must never crash the round
            return GroupedAnswer({}, f"analysis failed unexpectedly ({type(exc).__name__})")
        finally:
            metrics.ANALYSIS_TICK_SECONDS.labels(kind).observe(time.perf_counter() - started)

    def _forget_before(self, cutoff: datetime) -> None:
        for key in [k for k in self._answers if k[2] < cutoff]:
            del self._answers[key]
