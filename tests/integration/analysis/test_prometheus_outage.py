"""Prometheus stops for a few ticks: every grouped Rollout says Error and its totals stand
still; once it is back, one catch-up fills the gap and the totals agree with the exact query.

The error mix during the outage differs from the rest, so totals that skipped the gap
(the operations counted while Prometheus was down) would miss the 0.5 pp bar.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from analysis_accuracy import AccuracyLog
from analysis_world import INTERVAL_SECONDS, SETTLED_SECONDS, WorldFactory, verdict

from flagops_devtools.testing.stage_totals import StageTotals, parse_time

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

QUERIES = "flagops_analysis_queries_total"


def test_outage_gives_error_then_catches_up(make_world: WorldFactory) -> None:
    world = make_world({"out_a": 0.01, "out_b": 0.0})
    log = AccuracyLog(world)
    names = [
        world.create(n, n.replace("-", "_"), consecutiveErrorLimit=30).name
        for n in ("out-a", "out-b")
    ]
    world.wait_all(lambda s: verdict(s) == "Pass", observe=log.observe, message="first Pass")
    world.wait_in_stage(names, SETTLED_SECONDS, observe=log.observe)
    catchups = world.metric(QUERIES, kind="catchup")

    for app in world.apps.values():
        app.set(error_share=0.06)
    world.prometheus.stop()
    down = world.wait_all(lambda s: verdict(s) == "Error", observe=log.observe, message="Error")
    frozen = {n: StageTotals.from_status(down[n]) for n in names}
    first_error = {n: parse_time(down[n]["lastAnalysis"]["time"]) for n in names}
    # Two more ticks down: still Error, totals where they stood.
    goal = max(first_error.values()) + timedelta(seconds=2 * INTERVAL_SECONDS)
    still = world.wait_all(
        lambda s: parse_time(s["lastAnalysis"]["time"]) >= goal,
        observe=log.observe,
        message="two more analyses during the outage",
    )
    for name in names:
        assert verdict(still[name]) == "Error", still[name]
        assert StageTotals.from_status(still[name]) == frozen[name], "totals moved while down"
        assert still[name]["phase"] == "Progressing"

    world.prometheus.start()
    for app in world.apps.values():
        app.set(error_share=0.01)
    back = world.wait_all(
        lambda s: (
            verdict(s) == "Pass"
            and (t := StageTotals.from_status(s)) is not None
            and t.through > goal
        ),
        observe=log.observe,
        message="Pass after the outage",
    )
    world.wait_ticks("out-a", 5, observe=log.observe)
    log.observe(world.statuses())
    assert world.metric(QUERIES, kind="catchup") > catchups, "no catch-up query after the outage"
    for name in names:
        assert back[name]["phase"] == "Progressing"
    log.assert_accurate(set(names), at_least=8)
