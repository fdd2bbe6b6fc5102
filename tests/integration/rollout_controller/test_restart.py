"""SIGKILL the operator mid-rollout: the next one continues exactly where it stopped."""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any

import pytest
from rollout_controller_env import EnvFactory, RolloutEnv

from flagops.api.stages import ORDER
from flagops_devtools.testing.kubelet_standin import (
    CommandResult,
    ProbeInvocation,
    ProbeKubeletStandIn,
)

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

HEALTHY = json.dumps({"healthy": True, "status": "CONNECTED", "message": "reachable"})


class HeldProbe:
    """A probe the test lets finish when it wants (the stand-in calls it per pod)."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started: list[str] = []

    def __call__(self, invocation: ProbeInvocation) -> CommandResult:
        self.started.append(invocation.pod)
        self.release.wait(60)
        return CommandResult(exit_code=0, message=HEALTHY)


def quick(invocation: ProbeInvocation) -> CommandResult:
    return CommandResult(exit_code=0, message=HEALTHY)


def restart(env: RolloutEnv) -> None:
    env.operator.kill()
    env.operator.start()


def job_names(env: RolloutEnv) -> list[str]:
    return sorted(j.metadata.name for j in env.jobs())


def test_sigkill_at_any_point_neither_skips_nor_repeats(
    make_env: EnvFactory, kubelet_standin: ProbeKubeletStandIn
) -> None:
    kubelet_standin.command_override = quick
    env = make_env()
    env.create_flag(enabled=False)
    probe: dict[str, Any] = {"integration": "calendar_sync", "timeout": "15s", "every": "15s"}
    env.create_rollout(stageDuration="2s", healthProbe=probe)

    # 1. During a stage, once it is announced (random kills at any moment, including
    # between the status write and the Event post: tests/integration/chaos/test_sigkill.py).
    env.wait_status(lambda s: s.get("stage") == "BETA", timeout=60)
    env.wait_events("StageAdvanced", count=2)
    restart(env)
    env.wait_status(lambda s: s.get("stage") == "EARLY_ACCESS", timeout=30)

    # 2. While a probe Job runs (held until the new operator is up). Paused meanwhile,
    # so no stage change races the kill.
    env.act_and_wait("pause")
    held = HeldProbe()
    kubelet_standin.command_override = held
    running = env.wait_status(
        lambda s: any(pod.startswith(f"{s.get('activeProbeJob')}-") for pod in held.started),
        timeout=40,
    )
    job = running["activeProbeJob"]
    restart(env)
    env.wait_analyses(2)
    assert env.status()["activeProbeJob"] == job
    jobs_while_held = job_names(env)
    assert jobs_while_held.count(job) == 1
    held.release.set()
    status = env.wait_status(lambda s: (s.get("lastProbe") or {}).get("job") == job)
    assert status["lastProbe"]["result"] == "Succeeded"
    assert len(held.started) == 1

    # 3. Right after an action annotation.
    resume_id = env.act("resume", reason="kill me")
    restart(env)
    status = env.wait_status(lambda s: (s.get("lastAction") or {}).get("id") == resume_id)
    assert status["lastAction"]["result"] == "Succeeded"
    handled = [e for e in env.wait_events("ActionSucceeded", count=2) if resume_id in e.message]
    assert len(handled) == 1

    status = env.wait_status(lambda s: s.get("phase") == "Completed", timeout=60)
    assert status["stage"] == "FULL"
    # A contiguous chain of stage changes: none skipped, repeated or regressed.
    env.wait_events("StageAdvanced", count=len(ORDER) - 1)
    assert env.stage_steps() == [(a.value, b.value) for a, b in itertools.pairwise(ORDER)]
    # One Job per sequence number, and never two at once.
    sequences = sorted(int(j.metadata.labels["flagops.dev/probe-sequence"]) for j in env.jobs())
    assert sequences == list(range(1, len(sequences) + 1))
    assert set(jobs_while_held) <= set(job_names(env))
