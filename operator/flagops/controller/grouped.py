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
from datetime import UTC, datetime, timedelta

from flagops.controller import metrics
from flagops.controller.querying import in_query_thread
from flagops.rollouts import measure
from flagops.rollouts.prometheus import QueryFailed
from flagops.rollouts.totals import Counts

# Answers for ticks older than this many intervals are dropped from the memo: only the
# rounds of a tick ask for it, and they all come within one interval.
_KEEP_INTERVALS = 3


@dataclass(frozen=True)
class GroupedAnswer:
    counts: dict[str, Counts]
    failure: str | None = None  # why there are no counts (a safe message)


class GroupedQueries:
    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        # Each answer with the time after which no round asks for it any more.
        self._answers: dict[
            tuple[str, int, datetime], tuple[asyncio.Task[GroupedAnswer], datetime]
        ] = {}
        self._swept_at = datetime.min.replace(tzinfo=UTC)

    async def counts(
        self, address: str, window: timedelta, at: datetime, interval: timedelta
    ) -> GroupedAnswer:
        """Every integration's counts in (at - window, at] on Prometheus `address`."""
        key = (address, window // timedelta(milliseconds=1), at)
        found = self._answers.get(key)
        if found is not None:
            task = found[0]
        else:
            kind = "grouped" if window == interval else "catchup"
            task = asyncio.create_task(self._ask(address, window, at, kind))
            self._answers[key] = (task, at + _KEEP_INTERVALS * interval)
            if at > self._swept_at:
                # Once per tick, not per new key: a ramp of 10,000 Rollouts adds thousands
                # of catch-up keys to one tick.
                self._swept_at = at
                self._forget_before(at)
        # A shielded await: one Rollout's round being cancelled must not cancel the
        # query the others are waiting for.
        return await asyncio.shield(task)

    async def _ask(self, address: str, window: timedelta, at: datetime, kind: str) -> GroupedAnswer:
        client = measure.prometheus_client(address, self._timeout)
        metrics.ANALYSIS_QUERIES.labels(kind).inc()
        started = time.perf_counter()
        try:
            counts = await in_query_thread(
                measure.measure_counts, client, window, at, self._timeout, address
            )
            return GroupedAnswer(counts)
        except QueryFailed as exc:
            return GroupedAnswer({}, str(exc))
        except Exception as exc:  # an analysis must never crash the round
            return GroupedAnswer({}, f"analysis failed unexpectedly ({type(exc).__name__})")
        finally:
            metrics.ANALYSIS_TICK_SECONDS.labels(kind).observe(time.perf_counter() - started)

    def _forget_before(self, now: datetime) -> None:
        for key in [k for k, (_, keep_until) in self._answers.items() if keep_until < now]:
            del self._answers[key]
