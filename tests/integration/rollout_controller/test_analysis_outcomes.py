"""What a Rollout does with each verdict a real Prometheus leads to: Fail, Inconclusive, Error."""

from __future__ import annotations

from typing import Any

import pytest
from rollout_controller_env import EnvFactory, RolloutEnv, analyses, parse_time

from flagops.api.stages import ORDER, Stage

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def _passing_at_internal(env: RolloutEnv, **spec: Any) -> None:
    """A Rollout that left DISABLED and saw a Pass at INTERNAL (long bake: it stays there)."""
    env.create_flag(enabled=False)
    env.create_rollout(stageDuration="10m", **spec)
    env.wait_status(
        lambda s: (
            s.get("stage") == "INTERNAL" and (s.get("lastAnalysis") or {}).get("verdict") == "Pass"
        ),
        timeout=60,
    )


def test_error_spike_pauses_at_the_stage(make_env: EnvFactory) -> None:
    env = make_env()
    _passing_at_internal(env)
    env.traffic.set(error_share=0.5)

    status = env.wait_status(lambda s: s.get("phase") == "Paused", timeout=30)
    assert status["stage"] == "INTERNAL"
    assert status["pauseReason"] == "AnalysisFailed"
    assert status["lastAnalysis"]["verdict"] == "Fail"
    assert status["lastAnalysis"]["errorRate"] > 0.05
    paused = env.wait_events("Paused")
    assert len(paused) == 1
    assert paused[0].type == "Warning"
    assert "consecutive failed analyses" in paused[0].message
    env.record("Paused")

    # Paused means paused: more analyses, still failing, nothing moves, no second Event.
    env.wait_analyses(3)
    status = env.status()
    assert (status["stage"], status["phase"]) == ("INTERNAL", "Paused")
    assert env.reasons().count("Paused") == 1
    published = env.published()
    assert published is not None
    assert (published["enabled"], published["stage"]) == (True, "INTERNAL")


def test_error_spike_with_rollback_on_error_turns_the_flag_off(make_env: EnvFactory) -> None:
    env = make_env()
    _passing_at_internal(env, analysis={"rollbackOnError": True})
    env.traffic.set(error_share=0.5)

    status = env.wait_status(lambda s: s.get("phase") == "RolledBack", timeout=30)
    assert status["stage"] == "DISABLED"
    assert status["currentPercent"] == 0
    rolled_back = env.wait_events("RolledBack")
    assert len(rolled_back) == 1
    assert rolled_back[0].type == "Warning"
    published = env.wait_published(lambda p: p["stage"] == "DISABLED")
    assert published["enabled"] is False
    env.record("RolledBack")

    # Clean traffic again does not climb back by itself: a rollback waits for retry.
    # (A check action is a barrier: once it is recorded, a whole round has seen the state.)
    env.traffic.set(error_share=0.0)
    status = env.act_and_wait("check")
    assert (status["stage"], status["phase"]) == ("DISABLED", "RolledBack")


def test_no_traffic_holds_without_pausing(make_env: EnvFactory) -> None:
    env = make_env(rate=0)
    env.create_flag(enabled=False)
    env.create_rollout(stageDuration="1s")
    env.wait_status(lambda s: s.get("stage") == "INTERNAL" and analyses(s), timeout=60)

    env.wait_analyses(4)
    status = env.status()
    assert status["stage"] == "INTERNAL"
    assert status["phase"] == "Progressing"
    assert status["message"].startswith("INTERNAL; waiting for samples: 0 of 20"), status["message"]
    # Four analyses and more, all alike: one run of the same health, one history entry.
    taken = analyses(status)
    assert [(h["verdict"], h["stage"]) for h in taken] == [("Inconclusive", "INTERNAL")]
    assert parse_time(status["lastAnalysis"]["time"]) > parse_time(taken[0]["time"])
    assert status["consecutiveFailures"] == 0
    assert "Paused" not in env.reasons()
    assert env.stage_steps() == [("DISABLED", "INTERNAL")]
    env.record("Progressing")


def test_prometheus_outage_pauses_after_the_error_limit(make_env: EnvFactory) -> None:
    env = make_env()
    env.create_flag(enabled=False)
    env.create_rollout(stageDuration="3s", analysis={"consecutiveErrorLimit": 3})
    env.wait_status(lambda s: s.get("stage") == "BETA", timeout=60)
    env.prometheus.stop()
    stage = env.status()["stage"]
    env.wait_events("StageAdvanced", count=ORDER.index(Stage(stage)))
    steps = env.stage_steps()

    status = env.wait_status(lambda s: s.get("phase") == "Paused", timeout=30)
    assert status["pauseReason"] == "PrometheusUnavailable"
    assert status["stage"] == stage
    assert status["consecutiveErrors"] >= 3
    newest = analyses(status)[0]
    assert newest["verdict"] == "Error" and "unreachable" in newest["message"]
    assert "unreachable" in status["lastAnalysis"]["message"]
    warning = env.wait_events("Paused")
    assert len(warning) == 1
    assert warning[0].type == "Warning"
    assert "PrometheusUnavailable" in warning[0].message

    # Still down: errors go on, the stage does not move.
    env.wait_analyses(2)
    assert env.status()["stage"] == stage
    assert env.stage_steps() == steps

    # Back up: the pause stays until someone resumes; then the climb continues.
    env.prometheus.start()
    env.prometheus.wait_for_scrape()
    env.wait_status(lambda s: (s.get("lastAnalysis") or {}).get("verdict") != "Error")
    assert env.status()["phase"] == "Paused"
    result = env.act_and_wait("resume")
    assert result["lastAction"]["result"] == "Succeeded"
    env.wait_status(lambda s: s.get("stage") not in (None, stage), timeout=30)
    env.wait_events("StageAdvanced", count=len(steps) + 1)
    assert env.stage_steps()[len(steps)][0] == stage
