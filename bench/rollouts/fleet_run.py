"""D. fleet, one operator process: N Rollouts and N flags at a 30 s interval.

Each size gets a control plane of its own (etcd + kube-apiserver, no objects left
from the size before), the shared Prometheus and traffic, and one `flagops run`
serving every namespace. Ramp: from the first create until every Rollout has a
verdict; then until every verdict counts its stage's traffic (not `Inconclusive`: the
stage is published and counted). Then `settle` intervals, then a window of whole
intervals in which every figure is a counter delta (bench/rollouts/meters.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bench.common import control_plane_with_crds
from bench.rollouts.fleet import Created, Fleet, bulk_client, ramp
from bench.rollouts.meters import (
    CpuClock,
    OperatorCounters,
    apiserver_status_writes,
    read_operator,
)
from bench.rollouts.world import RssSampler, child_processes, machine_busy
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.prometheus import PrometheusServer

OPERATOR = "operator"
# Measured on this machine (2 cores, shared with other work; 2026-12-01 run): creates
# per second, first verdicts per second after the last create, and the seconds a run
# spends on neither nor the window (control plane, operator start, teardown).
CREATES_PER_SECOND = 120.0
FIRST_VERDICTS_PER_SECOND = 14.0
FIXED_SECONDS = 60.0
# The operator's --status-heartbeat default (FLAGOPS_STATUS_HEARTBEAT).
DEFAULT_HEARTBEAT_SECONDS = 300


@dataclass(frozen=True)
class FleetOptions:
    sizes: tuple[int, ...]  # Rollouts per one-process run, grouped analysis
    baseline_sizes: tuple[int, ...]  # the same with --analysis-grouping off
    flags: int | None  # FeatureFlags per run (None: one per Rollout)
    interval_seconds: int
    window_intervals: int
    settle_intervals: int
    per_namespace: int
    heartbeat: int | None  # --status-heartbeat (None: the operator's default)
    shards: int  # shard count of the sharded run (0: none)
    shard_size: int  # Rollouts per shard
    peering_lifetime: int
    timeout: float

    def flags_for(self, rollouts: int) -> int:
        return max(rollouts, self.flags or 0)

    def estimate(self, rollouts: int, processes: int = 1) -> float:
        """Wall seconds one run should take: creating, first verdicts, settling, window."""
        creating = 2 * self.flags_for(rollouts) / CREATES_PER_SECOND
        analysing = max(2 * self.interval_seconds, rollouts / FIRST_VERDICTS_PER_SECOND)
        waiting = (self.settle_intervals + self.window_intervals) * self.interval_seconds
        return FIXED_SECONDS * processes + creating + analysing + waiting

    @property
    def heartbeat_seconds(self) -> int:
        return self.heartbeat if self.heartbeat is not None else DEFAULT_HEARTBEAT_SECONDS

    def operator_env(self, grouping: str) -> dict[str, str]:
        # Always explicit: OperatorProcess defaults the heartbeat to 0 (write every
        # analysis) for the tests that follow analyses through status.
        return {
            "FLAGOPS_ANALYSIS_GROUPING": grouping,
            "FLAGOPS_STATUS_HEARTBEAT": str(self.heartbeat_seconds),
        }


@dataclass(frozen=True)
class Window:
    """Counter deltas over the measured window."""

    # Between the operators' counter snapshots: the counters' time base.
    seconds: float
    intervals: float
    # Between the CPU clock's readings (a little wider): the CPU figures' time base.
    cpu_span: float
    operators: dict[str, OperatorCounters]  # by process label
    prometheus_queries: float
    apiserver_status_writes: float
    cpu_seconds: dict[str, float]  # by process label
    machine_busy: float  # share of both cores


@dataclass(frozen=True)
class RunResult:
    label: str
    rollouts: int
    flags: int
    grouping: str
    created: Created
    ramp_seconds: float
    ramp_verdicts: dict[str, int]
    settled_seconds: float
    rss_max_kib: dict[str, int]  # by operator label, ramp + window
    window: Window
    wall_seconds: float
    estimate_seconds: float
    heartbeat_seconds: int


def read_all(
    operators: Mapping[str, OperatorProcess],
) -> tuple[dict[str, OperatorCounters], float]:
    """Every operator's counters, and when they were read (the middle of the reads)."""
    started = time.perf_counter()
    counters = {name: read_operator(op) for name, op in operators.items()}
    return counters, (started + time.perf_counter()) / 2


def measure_window(
    plane: ControlPlane,
    operators: Mapping[str, OperatorProcess],
    interval: float,
    intervals: int,
    prometheus_queries: Callable[[], float],
    also_cpu: Mapping[str, OperatorProcess] | None = None,
) -> Window:
    """Samples every counter, waits `intervals` intervals, samples again.

    `operators` are read for their counters and CPU; `also_cpu` (standbys) for CPU only.
    """
    pids = {name: pid for name, pid in plane.pids().items() if pid is not None}
    pids.update(
        {comm: pid for comm, pid in child_processes().items() if comm.startswith("prometheus")}
    )
    for name, operator in {**operators, **(also_cpu or {})}.items():
        pid = operator.process.pid
        if pid is not None:
            pids[name] = pid
    clock = CpuClock(pids)
    # The operators' counters are read right at the window's edges; the apiserver's and
    # Prometheus's outside them, a second or so wider. Reading 10,000 Rollouts' metrics
    # takes seconds, so each snapshot is dated at the middle of its read: dated at the
    # reads' outer edges, 10,000 Rollouts lost 3% of their analyses to the reading.
    writes_before = apiserver_status_writes(plane)
    queries_before = prometheus_queries()
    busy_before = machine_busy()
    clock.start()
    clocked = time.perf_counter()
    before, before_at = read_all(operators)
    # The window is the quantity measured: whole analysis intervals of steady state.
    time.sleep(interval * intervals)
    after, after_at = read_all(operators)
    cpu = clock.stop()
    cpu_span = time.perf_counter() - clocked
    seconds = after_at - before_at
    busy_after = machine_busy()
    queries_after = prometheus_queries()
    writes_after = apiserver_status_writes(plane)
    busy = (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1.0)
    return Window(
        seconds=seconds,
        intervals=seconds / interval,
        cpu_span=cpu_span,
        operators={name: after[name].minus(before[name]) for name in after},
        prometheus_queries=queries_after - queries_before,
        apiserver_status_writes=writes_after - writes_before,
        cpu_seconds=cpu,
        machine_busy=busy,
    )


def run_one(
    options: FleetOptions,
    prometheus: PrometheusServer,
    prometheus_queries: Callable[[], float],
    rollouts: int,
    grouping: str,
    say: Callable[[str], None],
) -> RunResult:
    label = f"{rollouts:,}" + ("" if grouping == "on" else f", grouping {grouping}")
    estimate = options.estimate(rollouts)
    say(
        f"D: {label}: {rollouts:,} Rollouts + {options.flags_for(rollouts):,} flags, "
        f"estimated {estimate / 60:.0f} min"
    )
    wall = time.perf_counter()
    interval = float(options.interval_seconds)
    with control_plane_with_crds() as plane:
        fleet = Fleet.plan(
            rollouts,
            options.flags_for(rollouts),
            options.per_namespace,
            options.interval_seconds,
            prefix=f"fleet{rollouts}{grouping}",
        )
        for namespace in fleet.namespaces:
            plane.create_namespace(namespace)
        operator = OperatorProcess(
            plane.kubeconfig,
            list(fleet.namespaces),
            prometheus_address=prometheus.url,
            extra_env=options.operator_env(grouping),
        ).start(timeout=120)
        api = bulk_client(plane)
        pid = operator.process.pid
        assert pid is not None
        try:
            with RssSampler(pid).running() as rss:
                started = time.perf_counter()
                ramped = ramp(api, fleet, options.timeout, say, started)
                # Settle: the first rounds after creation are not steady state.
                time.sleep(interval * options.settle_intervals)
                window = measure_window(
                    plane,
                    {OPERATOR: operator},
                    interval,
                    options.window_intervals,
                    prometheus_queries,
                )
        finally:
            api.close()
            operator.stop()
    return RunResult(
        label=label,
        rollouts=rollouts,
        flags=fleet.flags,
        grouping=grouping,
        created=ramped.created,
        ramp_seconds=ramped.seconds,
        settled_seconds=ramped.settled_seconds,
        ramp_verdicts=ramped.verdicts,
        rss_max_kib={OPERATOR: rss.max_kib},
        window=window,
        wall_seconds=time.perf_counter() - wall,
        estimate_seconds=estimate,
        heartbeat_seconds=options.heartbeat_seconds,
    )
