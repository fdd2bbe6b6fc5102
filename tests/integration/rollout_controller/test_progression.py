"""Rollouts move through stages on a real Prometheus's verdicts (real apiserver, real operator)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from flagops.api.stages import ORDER, Stage
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def test_clean_traffic_advances_to_full(rollout_env: Any) -> None:
    env = rollout_env
    env.create_flag(enabled=False, allowedCohorts=["beta"])
    env.create_rollout()
    status = env.wait_status(lambda s: s.get("phase") == "Completed", timeout=120)
    assert status["stage"] == "FULL"
    assert status["currentPercent"] == 100
    # The ConfigMap follows the status (published right after, coalesced).
    published = env.wait_published(lambda p: p["stage"] == "FULL")
    assert (published["enabled"], published["rolloutPercent"]) == (True, 100)

    # Every stage was visited in order, one step at a time.
    env.wait_events("StageAdvanced", count=len(ORDER) - 1)
    steps = [e.message.split(":")[0] for e in env.events() if e.reason == "StageAdvanced"]
    expected = [f"{a.value} -> {b.value}" for a, b in itertools.pairwise(ORDER)]
    assert steps == expected
    # The flag's status is reported right after the ConfigMap write, not with it.
    flag = wait_for(
        lambda: (f := env.flag())["status"]["effective"]["stage"] == Stage.FULL.value and f,
        timeout=15,
        message="flag status at FULL",
    )
    assert flag["status"]["effective"]["source"] == "rollout/calendar-sync"
    assert flag["status"]["publishedAt"]
