"""Rollouts on the default templates share one grouped query per tick; a custom template runs
alone; each Rollout's accumulated error rate stays within 0.5 pp of its own exact query."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from analysis_accuracy import AccuracyLog
from analysis_world import (
    INTERVAL_SECONDS,
    MIN_SAMPLES,
    SETTLED_SECONDS,
    AnalysisWorld,
    WorldFactory,
    analysed,
    verdict,
)

from flagops_devtools.testing.stage_totals import Counts
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

QUERIES = "flagops_analysis_queries_total"
TICKS = 5


@dataclass(frozen=True)
class QueryCounts:
    """Queries of each kind sent while a Rollout's totals ran `ticks` ticks further."""

    ticks: int
    grouped: float
    alone: float


def count_queries(world: AnalysisWorld, marker: str, log: AccuracyLog) -> QueryCounts:
    # Counted from just after a tick's totals land to just after the TICKS-th next one's.
    first = world.wait_ticks(marker, 1, observe=log.observe)
    grouped, alone = world.metric(QUERIES, kind="grouped"), world.metric(QUERIES, kind="alone")
    last = world.wait_ticks(marker, TICKS, observe=log.observe)
    ticks = round((last.through - first.through).total_seconds() / INTERVAL_SECONDS)
    return QueryCounts(
        ticks=ticks,
        grouped=world.metric(QUERIES, kind="grouped") - grouped,
        alone=world.metric(QUERIES, kind="alone") - alone,
    )


def test_one_grouped_query_per_tick_for_one_or_six_rollouts(make_world: WorldFactory) -> None:
    shares = {"grp_a": 0.01, "grp_b": 0.0, "grp_c": 0.02, "grp_d": 0.03, "grp_e": 0.01}
    world = make_world({**shares, "solo": 0.01})
    log = AccuracyLog(world)
    world.create("grouped-a", "grp_a")
    world.wait_all(analysed, observe=log.observe, message="first grouped verdict")
    one = count_queries(world, "grouped-a", log)
    # A new error mix mid-stage: totals that dropped or repeated a tick would drift from it.
    world.wait_in_stage(["grouped-a"], SETTLED_SECONDS, observe=log.observe)
    world.apps["grp_a"].set(error_share=0.03)

    world.create("solo", "solo", custom_template=True)
    grouped = ["grouped-a"]
    for integration in ("grp_b", "grp_c", "grp_d", "grp_e"):
        grouped.append(world.create(f"grouped-{integration[-1]}", integration).name)
    grouped.append(world.create("grouped-a2", "grp_a").name)  # two Rollouts, one integration
    world.wait_all(analysed, grouped, observe=log.observe, message="six grouped verdicts")
    world.wait_all(lambda s: verdict(s) == "Pass", ["solo"], message="the alone Rollout's Pass")
    wait_for(
        lambda: (
            world.metric("flagops_analysis_rollouts", mode="grouped") == 6
            and world.metric("flagops_analysis_rollouts", mode="alone") == 1
        ),
        timeout=10,
        message="flagops_analysis_rollouts{mode} = 6 grouped, 1 alone",
    )
    six = count_queries(world, "grouped-a", log)

    print(f"\nqueries over {TICKS} ticks: 1 grouped Rollout {one}; 6 grouped + 1 alone {six}")
    # One per tick (the count may straddle one tick's query), whatever the number of Rollouts.
    assert abs(one.grouped - one.ticks) <= 1, one
    assert abs(six.grouped - six.ticks) <= 1, six
    # Only the custom template runs alone: its own two queries per analysis, none before it.
    assert one.alone == 0, one
    assert 0 < six.alone <= 2 * six.ticks + 2, six
    log.assert_accurate(set(grouped), at_least=len(grouped))


def test_missing_series_and_one_failing_integration(make_world: WorldFactory) -> None:
    world = make_world({"ok_a": 0.01, "ok_b": 0.02, "bad": 0.2})
    log = AccuracyLog(world)
    for name, integration in (("ok-a", "ok_a"), ("ok-b", "ok_b"), ("bad", "bad")):
        world.create(name, integration)
    world.create("silent", "never_exported")  # no app exports this integration at all

    statuses = world.wait_all(
        lambda s: s.get("phase") == "Paused", ["bad"], observe=log.observe, message="bad paused"
    )
    assert statuses["bad"]["lastAnalysis"]["verdict"] == "Fail"
    assert statuses["bad"].get("pauseReason") == "AnalysisFailed"
    world.wait_all(
        lambda s: verdict(s) == "Pass", ["ok-a", "ok-b"], observe=log.observe, message="ok Pass"
    )
    # A few more ticks for all four, with a new error mix for one (still passing): the
    # failing one keeps failing, the others keep passing.
    world.wait_in_stage(["ok-a"], SETTLED_SECONDS, observe=log.observe)
    world.apps["ok_a"].set(error_share=0.035)
    world.wait_ticks("ok-a", 6, observe=log.observe)
    final = world.statuses()
    log.observe(final)

    for name in ("ok-a", "ok-b"):
        assert final[name]["phase"] == "Progressing", final[name]
        assert final[name]["stage"] == "BETA"
        assert {s.verdict for s in log.snapshots if s.rollout == name} <= {"Pass", "Inconclusive"}
    assert (final["bad"]["stage"], final["bad"]["phase"]) == ("BETA", "Paused")

    silent = final["silent"]
    assert verdict(silent) == "Inconclusive", silent
    assert f"waiting for samples: 0 of {MIN_SAMPLES}" in silent.get("message", ""), silent
    assert silent.get("phase") == "Progressing"
    seen = [s for s in log.snapshots if s.rollout == "silent"]
    assert len(seen) >= 3, "the silent Rollout's totals did not move with the ticks"
    assert {s.verdict for s in seen} == {"Inconclusive"}
    assert all(s.totals.counts == Counts(0.0, 0.0) for s in seen), seen[-1]

    log.assert_accurate({"ok-a", "ok-b", "bad"}, at_least=6)
