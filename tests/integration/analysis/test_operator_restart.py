"""The operator is SIGKILLed mid-stage and started again: totals continue from the status
checkpoint (or are recovered by a catch-up query), stay within 0.5 pp of the exact query,
and no stage is repeated.

The error mix changes while the operator is down, so totals that skipped or double-counted
the time it was away would miss the bar.
"""

from __future__ import annotations

import time

import pytest
from analysis_accuracy import AccuracyLog
from analysis_world import INTERVAL_SECONDS, SETTLED_SECONDS, WorldFactory, analysed, verdict

from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

QUERIES = "flagops_analysis_queries_total"


def test_sigkill_mid_stage_continues_the_totals(make_world: WorldFactory) -> None:
    world = make_world({"steady": 0.01, "stepper": 0.0})
    log = AccuracyLog(world)
    world.create("steady", "steady")
    world.create("stepper", "stepper", stage_duration="10s", target_stage="LIMITED")
    world.wait_all(analysed, observe=log.observe, message="first verdicts")
    world.wait_all(
        lambda s: s.get("stage") == "EARLY_ACCESS",
        ["stepper"],
        observe=log.observe,
        message="stepper at EARLY_ACCESS",
        timeout=60,
    )
    world.wait_in_stage(["steady"], SETTLED_SECONDS, observe=log.observe)
    checkpoint = world.totals("steady")
    assert checkpoint is not None

    # 6% while the operator is away (1% before and after): totals that skipped the
    # stretch it missed would be well over 0.5 pp low, yet the stage stays under 5%.
    world.operator.kill()
    killed_at = time.time()
    world.apps["steady"].set(error_share=0.06)
    # Away for more than a tick, so the new process has a stretch to catch up on (a quick
    # restart would only count the next tick): Prometheus holds a scrape of the 6% that
    # far past the kill.
    up = f'timestamp(up{{instance="{world.apps["steady"].target}"}})'
    wait_for(
        lambda: any(
            float(s["value"][1]) > killed_at + 2 * INTERVAL_SECONDS
            for s in world.prometheus.query(up)
        ),
        timeout=30,
        message="Prometheus scraped the stretch the operator missed",
    )
    world.operator.start()
    world.apps["steady"].set(error_share=0.01)
    resumed = world.wait_ticks("steady", 3, observe=log.observe)
    done = world.wait_all(
        lambda s: s.get("phase") == "Completed",
        ["stepper"],
        observe=log.observe,
        message="stepper Completed",
        timeout=90,
    )
    world.wait_ticks("steady", 3, observe=log.observe)
    log.observe(world.statuses())

    assert (resumed.stage, resumed.since) == (checkpoint.stage, checkpoint.since)
    assert resumed.counts.operations > checkpoint.counts.operations
    assert verdict(world.status("steady")) == "Pass"
    assert world.metric(QUERIES, kind="catchup") >= 1, "the new process never caught up"
    print(f"\nrestart: checkpoint {checkpoint.counts}, resumed {resumed.counts}")

    assert done["stepper"]["stage"] == "LIMITED"
    # One StageAdvanced per step, and the stages the totals count, in the order first seen,
    # go forward only: a stage run again after the restart would come back after the next.
    assert world.stage_steps("stepper") == [("BETA", "EARLY_ACCESS"), ("EARLY_ACCESS", "LIMITED")]
    assert log.stage_runs("stepper") == ["BETA", "EARLY_ACCESS", "LIMITED"]
    log.assert_accurate(at_least=10)
