"""The app restarts mid-stage (its counters start again from zero): the accumulated error rate
still follows the Rollout's exact query, across the reset and a change of error mix."""

from __future__ import annotations

import pytest
from analysis_accuracy import AccuracyLog
from analysis_world import SETTLED_SECONDS, WorldFactory, verdict

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def test_counter_reset_mid_stage(make_world: WorldFactory) -> None:
    world = make_world({"resets": 0.01, "steady": 0.02})
    log = AccuracyLog(world)
    world.create("resets", "resets")
    world.create("steady", "steady")
    world.wait_all(lambda s: verdict(s) == "Pass", observe=log.observe, message="first Pass")
    world.wait_in_stage(["resets"], SETTLED_SECONDS, observe=log.observe)
    before = world.totals("resets")
    assert before is not None

    # A burst of 15% errors from the restart to the tick that spans it, then 3%: totals that
    # lost the counts of the tick with the reset (the counter fell) would miss the burst.
    app = world.apps["resets"]
    app.set(error_share=0.15)
    app.restart()
    world.wait_ticks("resets", 1, observe=log.observe)
    app.set(error_share=0.03)
    world.wait_ticks("resets", 7, observe=log.observe)
    final = world.statuses()
    log.observe(final)

    after = world.totals("resets")
    assert after is not None
    assert (after.stage, after.since) == (before.stage, before.since), "the stage restarted"
    assert after.counts.operations > before.counts.operations
    assert all(s.verdict == "Pass" for s in log.snapshots if s.totals.through > before.through)
    print(f"\ncounter reset: totals before {before.counts}, after {after.counts}")
    log.assert_accurate(at_least=10)
