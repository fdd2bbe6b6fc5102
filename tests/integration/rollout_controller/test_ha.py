"""Two replicas with kopf peering: one acts; when it dies the other takes over."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from rollout_controller_env import EnvFactory, RolloutEnv, as_dict

from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

PEERING_LIFETIME = 5


def metric_sum(operator: OperatorProcess, name: str) -> float:
    total = 0.0
    for line in operator.metrics().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def create_peering(env: RolloutEnv, name: str) -> None:
    body = {"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": name}}
    env.custom.create_namespaced_custom_object(
        "kopf.dev", "v1", env.namespace, "kopfpeerings", body
    )


def peers(env: RolloutEnv, name: str) -> dict[str, Any]:
    obj = env.custom.get_namespaced_custom_object(
        "kopf.dev", "v1", env.namespace, "kopfpeerings", name
    )
    found: dict[str, Any] = as_dict(obj).get("status") or {}
    return found


def test_one_replica_acts_and_the_other_takes_over(make_env: EnvFactory) -> None:
    peering = f"flagops-{uuid.uuid4().hex[:8]}"
    args = ["--peering-lifetime", str(PEERING_LIFETIME)]
    env = make_env(
        start_operator=False,
        standalone=False,
        peering=peering,
        extra_args=args,
        extra_env={"FLAGOPS_PEERING_PRIORITY": "200"},
        name="operator-a",
    )
    create_peering(env, peering)
    active = env.operator.start()
    standby = make_env.operator(
        env.prometheus,
        standalone=False,
        peering=peering,
        extra_args=args,
        extra_env={"FLAGOPS_PEERING_PRIORITY": "100"},
        name="operator-b",
    ).start()
    # Both replicas are in the peering: a standby starts paused and stays so (silently)
    # while a higher-priority peer lives.
    wait_for(
        lambda: sorted(p["priority"] for p in peers(env, peering).values()) == [100, 200],
        timeout=30,
        message="both replicas in the peering",
    )

    env.create_flag(enabled=False)
    env.create_rollout(stageDuration="2s")
    env.wait_status(lambda s: s.get("stage") == "BETA", timeout=60)
    assert metric_sum(active, "flagops_analysis_total") > 0
    # The standby watches all along (a takeover needs no relisting) and acts on nothing.
    assert metric_sum(standby, "flagops_analysis_total") == 0
    assert metric_sum(standby, "flagops_configmap_writes_total") == 0
    assert metric_sum(standby, "flagops_rollout_status_writes_total") == 0
    assert "standby: another replica is active" in standby.log()

    # The active replica dies without a goodbye; the standby takes over once its
    # peering record expires.
    active.kill()
    killed_at = time.monotonic()
    stage = env.status()["stage"]
    wait_for(
        lambda: metric_sum(standby, "flagops_analysis_total") > 0,
        timeout=PEERING_LIFETIME + 20,
        message="the standby replica did not take over",
    )
    took_over = time.monotonic() - killed_at
    assert "Resuming operations" in standby.log()
    env.wait_status(lambda s: s.get("stage") not in (stage, None), timeout=30)
    status = env.wait_status(lambda s: s.get("phase") == "Completed", timeout=60)
    assert status["stage"] == "FULL"
    env.wait_events("StageAdvanced", count=6)
    steps = env.stage_steps()
    assert len(steps) == len(set(steps)) == 6
    print(f"standby took over {took_over:.1f}s after SIGKILL (lifetime {PEERING_LIFETIME}s)")
