"""D. fleet, sharded: `--shards` shards of `--shard-size` Rollouts, an active and a standby each.

Every replica runs cluster-wide (`flagops run --shard i/n`, kopf peering per shard,
`--peering-lifetime`), the active one with the higher priority, started first.
Namespaces are chosen so that each shard owns the same number (bench_shards'
`namespaces_for`). After the ramp and the window (the same figures as one process,
per shard), the last shard's active replica is SIGKILLed and the benchmark times,
from the kill:

- its standby's first analysis, and until it has analysed as many times as its
  shard has Rollouts (every Rollout once, if none twice);
- an edit to one flag in each of that shard's namespaces reaching its ConfigMap;
- the other shards' on-time share meanwhile (they should not notice).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubernetes import client

from bench.bench_shards import published
from bench.common import control_plane_with_crds
from bench.rollouts.fleet import FLAGS, Fleet, bulk_client, ramp
from bench.rollouts.fleet_run import FleetOptions, RunResult, measure_window
from bench.rollouts.meters import read_operator
from bench.rollouts.world import RssSampler
from flagops.api.resources import GROUP, VERSION
from flagops.controller.shard import Shard, shard_of
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.prometheus import PrometheusServer

ACTIVE_PRIORITY, STANDBY_PRIORITY = 200, 100
EDITED_PERCENT = 7
# A flag without a Rollout in every namespace: a Rollout owns its flag's published
# percentage, so only an unmanaged flag shows a spec edit as it is.
PROBE_FLAG, PROBE_KEY = "takeover-probe", "takeover_probe"


def _create_probe_flags(custom: client.CustomObjectsApi, namespaces: Sequence[str]) -> None:
    for ns in namespaces:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FeatureFlag",
            "metadata": {"name": PROBE_FLAG},
            "spec": {"key": PROBE_KEY, "enabled": False, "rolloutPercent": 0},
        }
        custom.create_namespaced_custom_object(GROUP, VERSION, ns, FLAGS, body)


@dataclass(frozen=True)
class Takeover:
    shard: int
    rollouts: int
    first_analysis: float  # seconds from SIGKILL
    all_analysed: float | None  # None: not within the deadline
    publish_max: float  # slowest of the shard's namespaces to publish a flag edit
    queries: dict[str, float]  # the standby's queries by kind, kill -> all analysed
    others_on_time: float | None  # share of the other shards' analyses on time meanwhile
    others_analyses: float


def active(index: int) -> str:
    return f"shard {index} active"


def standby(index: int) -> str:
    return f"shard {index} standby"


def _start_replicas(
    plane_kubeconfig: Path,
    custom: client.CustomObjectsApi,
    options: FleetOptions,
    prometheus: PrometheusServer,
) -> dict[str, OperatorProcess]:
    peering = f"fleet-{uuid.uuid4().hex[:6]}"
    operators: dict[str, OperatorProcess] = {}
    for index in range(options.shards):
        shard = Shard(index, options.shards)
        body = {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": shard.peering_name(peering)},
        }
        custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", body)
        for label, priority in (
            (active(index), ACTIVE_PRIORITY),
            (standby(index), STANDBY_PRIORITY),
        ):
            operators[label] = OperatorProcess(
                plane_kubeconfig,
                [],
                prometheus_address=prometheus.url,
                standalone=False,
                peering=peering,
                extra_args=[
                    "--peering-lifetime",
                    str(options.peering_lifetime),
                    "--shard",
                    str(shard),
                ],
                extra_env={
                    **options.operator_env("on"),
                    "FLAGOPS_PEERING_PRIORITY": str(priority),
                },
                name=f"fleet-{label.replace(' ', '-')}",
            ).start(timeout=120)
    return operators


def _take_over(
    fleet: Fleet,
    operators: dict[str, OperatorProcess],
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    shards: int,
    timeout: float,
) -> Takeover:
    """Kills the last shard's active replica; `timeout` bounds the wait for its standby."""
    victim = shards - 1
    mine = [ns for ns in fleet.namespaces if shard_of(ns, shards) == victim]
    rollouts = fleet.in_namespaces(mine)
    heir = operators[standby(victim)]
    others = [operators[active(i)] for i in range(shards) if i != victim]
    heir_before = read_operator(heir)
    others_before = [read_operator(op) for op in others]
    pid = operators[active(victim)].process.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    killed = time.perf_counter()
    for ns in mine:
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, ns, FLAGS, PROBE_FLAG, {"spec": {"rolloutPercent": EDITED_PERCENT}}
        )
    published_at: dict[str, float] = {}
    first: float | None = None
    done: float | None = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (done is None or len(published_at) < len(mine)):
        now = time.perf_counter() - killed
        analysed = sum(read_operator(heir).minus(heir_before).analyses.values())
        if first is None and analysed > 0:
            first = now
        if done is None and analysed >= rollouts:
            done = now
        for ns in mine:
            flag = published(core, ns, PROBE_KEY) if ns not in published_at else None
            if flag is not None and flag.get("rolloutPercent") == EDITED_PERCENT:
                published_at[ns] = now
        time.sleep(0.2)
    heir_delta = read_operator(heir).minus(heir_before)
    other_deltas = [read_operator(op).minus(b) for op, b in zip(others, others_before, strict=True)]
    timed = sum(d.analyses_timed for d in other_deltas)
    on_time = sum(d.on_time for d in other_deltas)
    if first is None or len(published_at) < len(mine):
        raise TimeoutError(f"shard {victim}'s standby did not take over within {timeout:g} s")
    return Takeover(
        shard=victim,
        rollouts=rollouts,
        first_analysis=first,
        all_analysed=done,
        publish_max=max(published_at.values()),
        queries=heir_delta.queries,
        others_on_time=on_time / timed if timed else None,
        others_analyses=sum(sum(d.analyses.values()) for d in other_deltas),
    )


def run_shards(
    options: FleetOptions,
    prometheus: PrometheusServer,
    prometheus_queries: Callable[[], float],
    say: Callable[[str], None],
) -> tuple[RunResult, Takeover]:
    total = options.shards * options.shard_size
    estimate = options.estimate(total, processes=2 * options.shards) + 3 * options.interval_seconds
    say(
        f"D: {options.shards} shards x {options.shard_size:,} Rollouts, estimated "
        f"{estimate / 60:.0f} min"
    )
    wall = time.perf_counter()
    interval = float(options.interval_seconds)
    with control_plane_with_crds() as plane:
        fleet = shard_fleet(total, options)
        for namespace in fleet.namespaces:
            plane.create_namespace(namespace)
        api = bulk_client(plane)
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        operators: dict[str, OperatorProcess] = {}
        samplers: dict[str, RssSampler] = {}
        try:
            with contextlib.ExitStack() as stack:
                operators = _start_replicas(plane.kubeconfig, custom, options, prometheus)
                for label, op in operators.items():
                    pid = op.process.pid
                    assert pid is not None
                    samplers[label] = stack.enter_context(RssSampler(pid).running())
                _create_probe_flags(custom, fleet.namespaces)
                started = time.perf_counter()
                ramped = ramp(api, fleet, options.timeout, say, started)
                time.sleep(interval * options.settle_intervals)
                window = measure_window(
                    plane,
                    {label: op for label, op in operators.items() if "active" in label},
                    interval,
                    options.window_intervals,
                    prometheus_queries,
                    also_cpu={k: op for k, op in operators.items() if "standby" in k},
                )
                say("    SIGKILL of the last shard's active replica ...")
                takeover = _take_over(
                    fleet, operators, custom, core, options.shards, options.timeout
                )
        finally:
            for operator in operators.values():
                operator.stop()
            api.close()
    result = RunResult(
        label=f"{options.shards} shards",
        rollouts=total,
        flags=fleet.flags,
        grouping="on",
        created=ramped.created,
        ramp_seconds=ramped.seconds,
        settled_seconds=ramped.settled_seconds,
        ramp_verdicts=ramped.verdicts,
        rss_max_kib={label: s.max_kib for label, s in samplers.items()},
        window=window,
        wall_seconds=time.perf_counter() - wall,
        estimate_seconds=estimate,
        heartbeat_seconds=options.heartbeat_seconds,
    )
    return result, takeover


def shard_fleet(rollouts: int, options: FleetOptions) -> Fleet:
    """Where the sharded run's Rollouts live: the same plan for running and reporting."""
    return Fleet.plan(
        rollouts,
        options.flags_for(rollouts),
        options.per_namespace,
        options.interval_seconds,
        prefix="fleet-shard",
        shards=options.shards,
    )


def shard_sizes(fleet_rollouts: int, options: FleetOptions) -> dict[int, int]:
    """Rollouts per shard as planned (equal when namespaces hold equal shares)."""
    fleet = shard_fleet(fleet_rollouts, options)
    return {
        i: fleet.in_namespaces([ns for ns in fleet.namespaces if shard_of(ns, options.shards) == i])
        for i in range(options.shards)
    }
