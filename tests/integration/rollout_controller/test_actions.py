"""Manual actions through the flagops.dev/action annotation, and the GitOps-owned spec switches."""

from __future__ import annotations

from typing import Any

import pytest
from rollout_controller_env import TEST_MANAGER, EnvFactory, RolloutEnv, parse_time, spec_writers

from flagops.api.actions import ACTION_ANNOTATION

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


def action_result(status: dict[str, Any]) -> tuple[str, str]:
    last = status["lastAction"]
    return last["name"], last["result"]


def test_actions_and_spec_switches(make_env: EnvFactory) -> None:
    env = make_env(rate=0)
    env.create_flag(enabled=False)
    env.create_rollout(autoAdvance=False, stageDuration="1s")

    # autoAdvance off: even DISABLED -> INTERNAL waits for a person.
    status = env.wait_status(lambda s: s.get("stage") == "DISABLED" and s.get("phase"))
    assert "waiting for an advance action" in status["message"]
    status = env.act_and_wait("advance", reason="first users")
    assert action_result(status) == ("advance", "Succeeded")
    assert status["lastAction"]["reason"] == "first users"
    assert status["stage"] == "INTERNAL"

    # No traffic: the newest analysis is Inconclusive, so a plain advance is refused.
    env.wait_status(lambda s: (s.get("lastAnalysis") or {}).get("verdict") == "Inconclusive")
    status = env.act_and_wait("advance")
    assert action_result(status) == ("advance", "Rejected")
    assert "not Pass" in status["lastAction"]["message"]
    assert status["stage"] == "INTERNAL"
    assert env.wait_events("ActionRejected")[0].type == "Warning"
    status = env.act_and_wait("advance", force=True)
    assert action_result(status) == ("advance", "Succeeded")
    assert status["stage"] == "BETA"

    # Traffic and a Pass: autoAdvance off still waits; advance then moves one stage.
    env.traffic.set(rate=50)
    env.wait_status(lambda s: (s.get("lastAnalysis") or {}).get("verdict") == "Pass", timeout=30)
    env.wait_analyses(2)
    status = env.status()
    assert status["stage"] == "BETA"
    assert "waiting for an advance action" in status["message"]
    status = env.act_and_wait("advance")
    assert action_result(status) == ("advance", "Succeeded")
    assert status["stage"] == "EARLY_ACCESS"

    # pause, performed once per id.
    pause_id = env.act("pause", reason="investigating")
    status = env.wait_status(lambda s: (s.get("lastAction") or {}).get("id") == pause_id)
    assert (status["phase"], status["pauseReason"]) == ("Paused", "Manual")
    handled_at = status["lastAction"]["at"]
    env.act("resume", action_id=pause_id)  # the same id again: ignored
    env.wait_analyses(2)
    status = env.status()
    assert status["phase"] == "Paused"
    assert (status["lastAction"]["name"], status["lastAction"]["at"]) == ("pause", handled_at)
    assert env.reasons().count("Paused") == 1
    env.record("Paused")

    status = env.act_and_wait("resume")
    assert action_result(status) == ("resume", "Succeeded")
    assert status["phase"] == "Progressing"
    assert status.get("pauseReason") is None

    # spec.paused: Git pauses and unpauses; an action cannot resume what Git paused.
    generation = env.patch_spec(paused=True)
    status = env.wait_status(lambda s: s.get("phase") == "Paused")
    assert status["pauseReason"] == "SpecPaused"
    status = env.act_and_wait("resume")
    assert action_result(status) == ("resume", "Rejected")
    assert "spec.paused" in status["lastAction"]["message"]
    generation = env.patch_spec(paused=False)
    env.wait_status(lambda s: s.get("phase") == "Progressing")
    assert env.wait_events("Resumed", count=2)

    # Lowering targetStage steps back to it.
    generation = env.patch_spec(targetStage="BETA")
    status = env.wait_status(lambda s: s.get("stage") == "BETA")
    assert status["phase"] == "Completed"
    assert env.wait_events("SteppedBack")[0].message.startswith("targetStage lowered to BETA")
    env.wait_published(lambda p: p["stage"] == "BETA" and p["rolloutPercent"] == 10)
    env.record("Completed")

    # check takes an analysis at once.
    before = env.status()["lastAnalysis"]["time"]
    status = env.act_and_wait("check")
    assert action_result(status) == ("check", "Succeeded")
    assert parse_time(status["lastAnalysis"]["time"]) >= parse_time(before)

    # A malformed annotation is refused with a Warning Event; nothing else changes.
    env.custom.patch_namespaced_custom_object(
        "flagops.dev",
        "v1alpha1",
        env.namespace,
        "rollouts",
        "calendar-sync",
        {"metadata": {"annotations": {ACTION_ANNOTATION: "explode@x1"}}},
    )
    invalid = env.wait_events("ActionInvalid")[0]
    assert invalid.type == "Warning"
    assert ACTION_ANNOTATION in invalid.message
    assert env.status()["lastAction"]["name"] == "check"

    # rollback, then retry.
    status = env.act_and_wait("rollback", reason="bad reviews")
    assert action_result(status) == ("rollback", "Succeeded")
    assert (status["stage"], status["phase"]) == ("DISABLED", "RolledBack")
    assert env.wait_published(lambda p: p["stage"] == "DISABLED")["enabled"] is False
    status = env.act_and_wait("retry")
    assert action_result(status) == ("retry", "Succeeded")
    assert (status["stage"], status["phase"]) == ("DISABLED", "Progressing")
    assert "Retrying" in [e.reason for e in env.wait_events("Retrying")]

    # Every stage change was one step, announced once.
    assert env.stage_steps() == [
        ("DISABLED", "INTERNAL"),
        ("INTERNAL", "BETA"),
        ("BETA", "EARLY_ACCESS"),
    ]
    assert_operator_never_wrote_spec(env, generation)


def assert_operator_never_wrote_spec(env: RolloutEnv, generation: int) -> None:
    obj = env.rollout()
    assert obj["metadata"]["generation"] == generation
    assert spec_writers(obj) == {TEST_MANAGER}
    assert ACTION_ANNOTATION in obj["metadata"]["annotations"]
    flag = env.flag()
    assert spec_writers(flag) == {TEST_MANAGER}
    assert flag["metadata"]["generation"] == 1
