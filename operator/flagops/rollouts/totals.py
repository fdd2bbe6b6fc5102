"""A Rollout's stage totals: what grouped analysis counted, tick by tick. Pure.

Grouped analysis asks Prometheus, per tick, how many operations and errors each
integration had in the tick's interval; each Rollout adds its integration's
figures to its stage's totals. The windows tile exactly: the totals run from the
stage's exposure start (`since`) to the newest tick counted (`through`), and the
next window to ask for is always (through, tick]. A gap longer than one interval
(a new stage, a restart from an older checkpoint, a missed tick) is asked for as
one window of its own length, which is the exact `[time in stage]` query when
nothing was counted yet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flagops.api.rollout import RolloutStatus, StageTotals
from flagops.rollouts.judge import Measurement
from flagops.rollouts.prometheus import QueryFailed, sample_value

ERROR_OUTCOME = "error"
# A window shorter than this is counted as nothing (it holds no scrape to speak of).
MIN_QUERY_WINDOW = timedelta(milliseconds=100)
# The grouped query: every integration's operations by outcome in (t - window, t].
#
# Not DESIGN's `increase(...[window])`: increase() needs two samples inside its window
# (a 30 s tick with a 30 s scrape has one, and answers nothing) and extrapolates to
# the window's edges, so a stage's ticks would not add up to the stage. The difference
# of each series' newest sample at t and at t - window telescopes exactly: the ticks of
# a stage add up to the stage. Per series, before summing, a counter that went down (an
# app restarted) or a series that is new counts its whole value since it started, as
# increase() does across a reset.
GROUPED_QUERY = (
    "sum by (integration, outcome) ("
    "(flagops_integration_operations_total"
    " - flagops_integration_operations_total offset {window}) >= 0"
    " or flagops_integration_operations_total)"
)


@dataclass(frozen=True)
class Counts:
    operations: float = 0.0
    errors: float = 0.0
    # Prometheus answered NaN for one of the integration's series: nothing it says about
    # this tick can be counted (the judge calls it Inconclusive, naming NaN).
    unreadable: bool = False


def grouped_query(window: timedelta) -> str:
    """The grouped query over `window` (whole milliseconds, which PromQL takes)."""
    return GROUPED_QUERY.format(window=f"{window // timedelta(milliseconds=1)}ms")


def counts_by_integration(result: Sequence[Mapping[str, Any]]) -> dict[str, Counts]:
    """The grouped query's answer as each integration's counts; QueryFailed on a bad one."""
    found: dict[str, Counts] = {}
    for sample in result:
        labels = sample.get("metric")
        if not isinstance(labels, Mapping):
            raise QueryFailed("answered a sample without labels")
        integration = labels.get("integration")
        if not isinstance(integration, str):
            continue  # series without an integration label serve no Rollout
        value = sample_value(dict(sample))
        before = found.get(integration, Counts())
        if math.isnan(value):
            found[integration] = Counts(before.operations, before.errors, unreadable=True)
            continue
        errors = value if labels.get("outcome") == ERROR_OUTCOME else 0.0
        found[integration] = Counts(
            before.operations + value, before.errors + errors, before.unreadable
        )
    return found


def current(status: RolloutStatus) -> StageTotals | None:
    """The totals for the status's current stage: the checkpoint when it belongs to this
    stage's exposure, else nothing counted yet. None until the stage is published: its
    users only see it from then, so nothing before counts (as the bake time)."""
    since = status.stage_published_at
    if status.stage is None or since is None:
        return None
    saved = status.stage_totals
    if saved is not None and saved.stage is status.stage and saved.since == since:
        return saved
    return StageTotals(stage=status.stage, since=since, through=since)


def window_to(totals: StageTotals, tick: datetime) -> timedelta:
    """The window still to count up to `tick` (zero or less: nothing to ask)."""
    return tick - totals.through


def needs_query(totals: StageTotals, tick: datetime) -> bool:
    return window_to(totals, tick) >= MIN_QUERY_WINDOW


def query_window(
    totals: StageTotals, tick: datetime, interval: timedelta
) -> tuple[timedelta, float]:
    """The window to ask for to count up to `tick`, and the share of its figures to count.

    A stage's first, partial tick (published less than an interval before the tick)
    takes that share of the tick's shared figures rather than a query of its own: the
    error rate is the tick's, the operations pro rata. Every other gap is asked for
    exactly (the shared tick when it is one interval, a catch-up otherwise).
    """
    window = window_to(totals, tick)
    if totals.through == totals.since and timedelta(0) < window < interval:
        return interval, window / interval
    return window, 1.0


def scaled(counts: Counts, share: float) -> Counts:
    if share == 1.0:
        return counts
    return Counts(counts.operations * share, counts.errors * share, counts.unreadable)


def add(totals: StageTotals, counts: Counts, tick: datetime) -> StageTotals:
    """The totals with the window (through, tick] counted."""
    if tick <= totals.through:
        return totals
    return totals.model_copy(
        update={
            "through": tick,
            "operations": totals.operations + max(counts.operations, 0.0),
            "errors": totals.errors + max(counts.errors, 0.0),
        }
    )


def measurement(totals: StageTotals, queries: int) -> Measurement:
    """The totals as the judge reads a measurement: samples and error rate."""
    operations = totals.operations
    error_rate = totals.errors / operations if operations > 0 else None
    return Measurement(samples=operations, error_rate=error_rate, queries=queries)
