"""The operator SIGKILLed at random moments during three ramping Rollouts.

A recorder started before the first Rollout keeps every version of every
Rollout, FeatureFlag, ConfigMap, Job and Event; the guarantees are checked on
that record: no stage skipped or repeated, one StageAdvanced Event per advance
(none lost, none twice), no duplicate probe Job, and every stage's exposure
published before the next stage began, baked for stageDuration from then.
The seed is printed; FLAGOPS_CHAOS_SEED=<seed> replays a schedule.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
from collections import Counter
from typing import Any

import pytest
from chaos_recorder import ClusterRecorder, as_dict, step_of
from kubernetes import client

from flagops.api.stages import ORDER, Stage
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.kubelet_standin import (
    CommandResult,
    ProbeInvocation,
    ProbeKubeletStandIn,
)
from flagops_devtools.testing.objects import GROUP, VERSION, create_flag, create_rollout
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.traffic import TrafficGenerator
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

ROLLOUTS = ("alpha", "bravo", "charlie")
KILLS = 20
STAGE_DURATION = 2.0
# Watch receipt times of two different objects may differ by scheduling jitter.
RECEIPT_JITTER = 0.5
HEALTHY = json.dumps({"healthy": True, "status": "CONNECTED", "message": "reachable"})


def quick(invocation: ProbeInvocation) -> CommandResult:
    return CommandResult(exit_code=0, message=HEALTHY)


def test_random_sigkills_lose_nothing(
    flagops_crds: ControlPlane,
    namespace: str,
    kube_api: Any,
    prometheus_server: Any,
    kubelet_standin: ProbeKubeletStandIn,
) -> None:
    seed = int(os.environ.get("FLAGOPS_CHAOS_SEED") or time.time_ns() % 1_000_000)
    print(f"\nchaos seed {seed} (FLAGOPS_CHAOS_SEED={seed} replays the kill schedule)")
    rng = random.Random(seed)
    kubelet_standin.command_override = quick
    custom = client.CustomObjectsApi(kube_api)
    traffic = TrafficGenerator("calendar_sync", "calendar_sync", rate=50).start()
    recorder = ClusterRecorder(kube_api, namespace)
    operator: OperatorProcess | None = None
    try:
        prometheus = prometheus_server([traffic.target], scrape_interval="1s")
        operator = OperatorProcess(
            flagops_crds.kubeconfig, [namespace], prometheus_address=prometheus.url
        )
        recorder.start()
        for name in ROLLOUTS:
            create_flag(custom, namespace, name, integration="calendar_sync", enabled=False)
            create_rollout(
                custom,
                namespace,
                name,
                stageDuration=f"{STAGE_DURATION:g}s",
                analysis={"interval": "1s", "minSampleSize": 20},
                healthProbe={"integration": "calendar_sync", "timeout": "3s", "every": "3s"},
            )

        began = time.monotonic()
        stages_before = total_stages(recorder)
        kills = 0
        for _ in range(KILLS):
            operator.start()
            # The kill schedule (not a wait for anything): a random moment of the operator's life.
            threading.Event().wait(rng.uniform(0.0, 3.0))
            operator.kill()
            kills += 1
        advanced_under_fire = total_stages(recorder) - stages_before
        kill_seconds = time.monotonic() - began
        operator.start()

        def all_completed() -> bool:
            return all(
                as_dict(
                    custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", n)
                )
                .get("status", {})
                .get("phase")
                == "Completed"
                for n in ROLLOUTS
            )

        wait_for(all_completed, timeout=150, message="all three Rollouts Completed")

        def announced() -> bool:
            return all(
                sum(e.get("reason") == "StageAdvanced" for e in recorder.rollout_events(n))
                >= len(ORDER) - 1
                and not (recorder.of("rollouts", n)[-1].status.get("pendingEvents"))
                for n in ROLLOUTS
            )

        wait_for(announced, timeout=30, message="every StageAdvanced Event posted")
        recorder.stop()

        print(
            f"kills: {kills} in {kill_seconds:.0f}s; stages entered under fire: "
            f"{advanced_under_fire}; total {time.monotonic() - began:.0f}s"
        )
        assert kills >= 20
        assert recorder.gaps == []
        bakes = [check_rollout(recorder, name) for name in ROLLOUTS]
        jobs = check_probe_jobs(recorder)
        shortest = min(itertools.chain.from_iterable(bakes))
        print(
            f"probe jobs: {jobs}; shortest bake from publication: {shortest:.2f}s "
            f"(stageDuration {STAGE_DURATION:g}s)"
        )
    finally:
        recorder.stop()
        if operator is not None:
            operator.stop()
        traffic.stop()


def total_stages(recorder: ClusterRecorder) -> int:
    return sum(len(recorder.stages(name)) for name in ROLLOUTS)


def check_rollout(recorder: ClusterRecorder, name: str) -> list[float]:
    """Assert the guarantees for one Rollout; its bakes (seconds from publication to next)."""
    entered = recorder.stages(name)
    # No stage skipped or repeated: the Rollout entered exactly DISABLED..FULL, in order.
    assert [stage for stage, _ in entered] == list(ORDER), f"{name}: {entered}"

    events = recorder.rollout_events(name)
    steps = [step_of(e) for e in events if e.get("reason") == "StageAdvanced"]
    expected = [(a.value, b.value) for a, b in itertools.pairwise(ORDER)]
    # One StageAdvanced Event per advance: none lost, none posted twice.
    assert sorted(steps, key=lambda s: ORDER.index(Stage(s[0]))) == expected, steps
    assert Counter(steps) == Counter(expected)
    # No Event of any reason posted twice (same reason, message and time).
    posted = Counter((e.get("reason"), e.get("message"), e.get("firstTimestamp")) for e in events)
    assert [k for k, n in posted.items() if n > 1] == []

    bakes = []
    for (stage, _), (nxt, version) in itertools.pairwise(entered):
        published = recorder.first_published(name, stage)
        # Every stage's exposure reached the ConfigMap before the next stage began.
        assert published is not None, f"{name}: {stage.value} never published"
        assert published.rv < version.rv, f"{name}: {nxt.value} began before {stage.value} was out"
        if stage is not Stage.DISABLED:
            bake = version.at - published.at
            # The bake counts from publication, not from the status write.
            assert bake >= STAGE_DURATION - RECEIPT_JITTER, (
                f"{name}: {stage.value} baked {bake:.2f}s"
            )
            bakes.append(bake)
    return bakes


def check_probe_jobs(recorder: ClusterRecorder) -> int:
    """No duplicate probe Job: one per sequence, each known to its Rollout, never two at once."""
    named = {
        v.status.get("activeProbeJob")
        for n in ROLLOUTS
        for v in recorder.of("rollouts", n)
        if v.status.get("activeProbeJob")
    }
    # A Job created in the recording's last moments may not be in a status yet; its name
    # carries the next sequence number, so the next round adopts it (409) rather than
    # making another. Only such a newest Job may be unrecorded.
    in_flight = {
        n: int(recorder.of("rollouts", n)[-1].status.get("probeSequence", 0)) + 1 for n in ROLLOUTS
    }
    jobs: dict[str, list[Any]] = {}
    for v in recorder.of("jobs"):
        jobs.setdefault(v.name, []).append(v)
    by_rollout: dict[str, list[tuple[int, int, int]]] = {}
    for job_name, versions in jobs.items():
        labels = versions[0].obj["metadata"].get("labels") or {}
        rollout = labels.get("flagops.dev/rollout")
        sequence = int(labels["flagops.dev/probe-sequence"])
        newest = job_name == max(
            (j for j in jobs if j.rsplit("-", 1)[0] == job_name.rsplit("-", 1)[0]),
            key=lambda j: int(j.rsplit("-", 1)[1]),
        )
        assert job_name in named or (newest and in_flight.get(str(rollout)) == sequence), (
            f"orphan probe Job {job_name}: no Rollout ever recorded it"
        )
        created = versions[0].rv
        finished = next(
            (
                v.rv
                for v in versions
                if (v.status.get("succeeded") or v.status.get("failed") or v.type == "DELETED")
            ),
            1 << 62,
        )
        by_rollout.setdefault(str(rollout), []).append((sequence, created, finished))
    for rollout, runs in by_rollout.items():
        runs.sort()
        assert [s for s, _, _ in runs] == list(range(1, len(runs) + 1)), (rollout, runs)
        for (_, _, done), (_, started, _) in itertools.pairwise(runs):
            assert started > done, f"{rollout}: two probe Jobs ran at once: {runs}"
    return len(jobs)
