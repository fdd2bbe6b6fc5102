"""`--analysis-grouping off`: every Rollout is analysed alone (the baseline grouping is
measured against), and no grouped or catch-up query is sent."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from analysis_world import INTERVAL_SECONDS, WorldFactory, verdict

from flagops_devtools.testing.stage_totals import parse_time
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

QUERIES = "flagops_analysis_queries_total"
ANALYSES = 3


def analysed_at(status: dict[str, Any]) -> Any:
    return parse_time(status["lastAnalysis"]["time"])


def test_grouping_off_analyses_each_rollout_alone(make_world: WorldFactory) -> None:
    world = make_world({"off_a": 0.01, "off_b": 0.02, "off_c": 0.0}, grouping="off")
    for integration in ("off_a", "off_b", "off_c"):
        world.create(integration.replace("_", "-"), integration)
    statuses = world.wait_all(lambda s: verdict(s) == "Pass", message="three Pass verdicts")
    wait_for(
        lambda: (
            world.metric("flagops_analysis_rollouts", mode="alone") == 3
            and world.metric("flagops_analysis_rollouts", mode="grouped") == 0
        ),
        timeout=10,
        message="flagops_analysis_rollouts{mode} = 3 alone, 0 grouped",
    )
    alone = world.metric(QUERIES, kind="alone")
    goal = max(analysed_at(s) for s in statuses.values()) + timedelta(
        seconds=ANALYSES * INTERVAL_SECONDS
    )
    world.wait_all(lambda s: analysed_at(s) >= goal, message=f"{ANALYSES} more analyses each")

    # Two queries per analysis, each Rollout its own.
    assert world.metric(QUERIES, kind="alone") - alone >= 2 * 3 * (ANALYSES - 1)
    assert world.metric(QUERIES, kind="grouped") == 0
    assert world.metric(QUERIES, kind="catchup") == 0
