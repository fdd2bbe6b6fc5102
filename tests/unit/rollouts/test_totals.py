"""Stage totals: the grouped answer read, windows tiled, checkpoints reused or reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flagops.api.rollout import RolloutStatus, StageTotals
from flagops.api.stages import Stage
from flagops.rollouts.prometheus import QueryFailed
from flagops.rollouts.totals import (
    Counts,
    add,
    counts_by_integration,
    current,
    grouped_query,
    measurement,
    needs_query,
    query_window,
    scaled,
    window_to,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def sample(integration: str | None, outcome: str, value: str) -> dict[str, Any]:
    labels = {"outcome": outcome} | ({"integration": integration} if integration else {})
    return {"metric": labels, "value": [T0.timestamp(), value]}


def test_grouped_answer_sums_outcomes_per_integration() -> None:
    found = counts_by_integration(
        [
            sample("calendar_sync", "success", "95"),
            sample("calendar_sync", "error", "5"),
            sample("nutrition", "success", "40"),
            sample(None, "success", "7"),  # no integration: serves nobody
            sample("coaching", "success", "NaN"),  # not a number: nothing to count
        ]
    )
    assert found == {
        "calendar_sync": Counts(100, 5),
        "nutrition": Counts(40, 0),
        "coaching": Counts(0, 0, unreadable=True),
    }


@pytest.mark.parametrize(
    "bad",
    [
        [{"value": [0, "1"]}],  # no labels
        [{"metric": {"integration": "a", "outcome": "error"}, "value": [0, "x"]}],
        [{"metric": {"integration": "a", "outcome": "error"}}],
    ],
)
def test_grouped_answer_that_makes_no_sense_is_refused(bad: list[dict[str, Any]]) -> None:
    with pytest.raises(QueryFailed):
        counts_by_integration(bad)


def test_grouped_query_window_is_whole_milliseconds() -> None:
    query = grouped_query(timedelta(seconds=30, microseconds=2500))
    assert "offset 30002ms" in query and query.startswith("sum by (integration, outcome) (")


def status(**kw: Any) -> RolloutStatus:
    base: dict[str, Any] = {
        "stage": "BETA",
        "stageStartedAt": "2026-01-01T11:59:00Z",
        "stagePublishedAt": "2026-01-01T11:59:02.5Z",
    }
    return RolloutStatus.model_validate({**base, **kw})


def test_a_new_stage_counts_from_its_publication() -> None:
    totals = current(status())
    assert totals is not None
    published = T0 - timedelta(seconds=57.5)
    assert (totals.stage, totals.since, totals.through) == (Stage.BETA, published, published)
    assert (totals.operations, totals.errors) == (0, 0)
    # Not published yet: nobody sees the stage, nothing counts.
    assert current(status(stagePublishedAt=None)) is None
    assert current(status(stage=None)) is None


def test_a_checkpoint_of_this_stage_is_resumed_and_of_another_is_not() -> None:
    since = "2026-01-01T11:59:02.5Z"
    saved = {
        "stage": "BETA",
        "since": since,
        "through": "2026-01-01T11:59:30Z",
        "operations": 50,
        "errors": 2,
    }
    resumed = current(status(stageTotals=saved))
    assert resumed is not None and resumed.operations == 50
    for other in ({**saved, "stage": "INTERNAL"}, {**saved, "since": "2026-01-01T11:50:00Z"}):
        fresh = current(status(stageTotals=other))
        assert fresh is not None and fresh.operations == 0


def test_windows_tile_from_since_to_each_tick() -> None:
    totals = StageTotals(stage=Stage.BETA, since=T0, through=T0)
    tick = T0 + timedelta(seconds=17)
    assert window_to(totals, tick) == timedelta(seconds=17) and needs_query(totals, tick)
    totals = add(totals, Counts(100, 4), tick)
    assert window_to(totals, tick + timedelta(seconds=30)) == timedelta(seconds=30)
    totals = add(totals, Counts(50, 1), tick + timedelta(seconds=30))
    assert (totals.operations, totals.errors) == (150, 5)
    # A tick already counted adds nothing; a sub-second gap needs no query.
    assert add(totals, Counts(999, 999), tick) == totals
    assert not needs_query(totals, totals.through + timedelta(milliseconds=99))


def test_measurement_is_errors_over_operations() -> None:
    totals = StageTotals(stage=Stage.BETA, since=T0, through=T0, operations=200, errors=3)
    measured = measurement(totals, queries=1)
    assert measured.samples == 200 and measured.error_rate == pytest.approx(0.015)
    empty = measurement(StageTotals(stage=Stage.BETA, since=T0, through=T0), queries=0)
    assert empty.samples == 0 and empty.error_rate is None


def test_a_stages_first_partial_tick_shares_the_ticks_query() -> None:
    interval = timedelta(seconds=30)
    since = T0 - timedelta(seconds=12)
    fresh = StageTotals(stage=Stage.BETA, since=since, through=since)
    window, share = query_window(fresh, T0, interval)
    assert window == interval and share == pytest.approx(0.4)
    assert scaled(Counts(100, 10), share) == Counts(40, 4)
    # Published more than an interval before the tick (a restart): asked exactly.
    old = StageTotals(
        stage=Stage.BETA, since=T0 - timedelta(seconds=95), through=T0 - timedelta(seconds=95)
    )
    assert query_window(old, T0, interval) == (timedelta(seconds=95), 1.0)
    # Counted up to the previous tick: the shared window, whole.
    counted = add(fresh, Counts(1, 0), T0)
    assert query_window(counted, T0 + interval, interval) == (interval, 1.0)
