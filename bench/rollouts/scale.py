"""C. scale: N Rollouts analysing on schedule: RSS, lateness, queries, CPU.

Punctuality comes from the operator's `flagops_analysis_lateness_seconds` histogram
(each analysis against its due time on the tick grid): status no longer records every
analysis (healthHistory keeps changes of health; steady analyses reach status on the
heartbeat only).
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bench.common import (
    Row,
    counter_value,
    histogram_sum_count,
    sample_process,
    verdict,
)
from bench.rollouts.fleet_run import DEFAULT_HEARTBEAT_SECONDS
from bench.rollouts.meters import ON_TIME_SECONDS, OperatorCounters, read_operator
from bench.rollouts.world import (
    INTEGRATIONS,
    SCALE_RSS_MIB,
    RssSampler,
    World,
    child_processes,
    fmt_counts,
    fmt_mib,
    fmt_ms,
    machine_busy,
    passing,
    status_of,
)
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for


@dataclass(frozen=True)
class ScaleResult:
    rollouts: int
    interval: float
    ramp_seconds: float
    window_seconds: float
    rss_after_ramp_kib: int
    rss_max_kib: int
    rss_peak_kib: int
    lateness: OperatorCounters  # window delta of the operator's analysis counters
    analyses: dict[str, float]
    prometheus_queries: float
    cpu_seconds: dict[str, float]
    machine_busy_share: float
    reconcile_mean: float
    reconcile_p50: float
    reconcile_p99: float
    phases: dict[str, int]


def _process_cpu(pids: dict[str, int]) -> dict[str, float]:
    cpu: dict[str, float] = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError, KeyError):
            cpu[name] = sample_process(pid).cpu_seconds
    return cpu


def _reconcile_buckets(operator: OperatorProcess) -> dict[float, float]:
    """Cumulative bucket counts of flagops_reconcile_seconds{kind="rollouts"} by upper bound."""
    from prometheus_client.parser import text_string_to_metric_families

    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(operator.metrics()):
        if family.name != "flagops_reconcile_seconds":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and sample.labels.get("kind") == "rollouts":
                buckets[float(sample.labels["le"])] = float(sample.value)
    return buckets


def bucket_percentile(before: dict[float, float], after: dict[float, float], pct: float) -> float:
    """Upper bound of the histogram bucket holding the pct-th percentile of what was added."""
    delta = sorted((le, after[le] - before.get(le, 0.0)) for le in after)
    total = delta[-1][1] if delta else 0.0
    for le, cumulative in delta:
        if total and cumulative >= pct / 100 * total:
            return le
    return float("nan")


def _analysis_counts(operator: OperatorProcess) -> dict[str, float]:
    text = operator.metrics()
    return {
        v: counter_value(text, "flagops_analysis_total", {"verdict": v})
        for v in ("Pass", "Fail", "Inconclusive", "Error")
    }


def run_scale(world: World) -> ScaleResult:
    config = world.config
    n, interval = config.rollouts, float(config.interval_seconds)
    namespace = world.plane.create_namespace("bench-rollout-scale")
    # The operator's own heartbeat, not the tests' 0 (a status write per analysis).
    operator = world.operator(
        namespace, {"FLAGOPS_STATUS_HEARTBEAT": str(DEFAULT_HEARTBEAT_SECONDS)}
    )
    pid = operator.process.pid
    assert pid is not None
    names = [f"scale-{i:03d}" for i in range(n)]
    try:
        with RssSampler(pid).running() as rss:
            started = time.perf_counter()

            def create(i: int) -> None:
                world.create_flag(
                    namespace,
                    names[i],
                    INTEGRATIONS[i % len(INTEGRATIONS)],
                    enabled=True,
                    rolloutPercent=10,
                )
                world.create_rollout(
                    namespace, names[i], stage_duration="1h", interval=f"{config.interval_seconds}s"
                )

            with ThreadPoolExecutor(8) as pool:
                list(pool.map(create, range(n)))

            def all_passing() -> bool:
                items = world.rollouts(namespace)
                return len(items) == n and all(passing(status_of(o)) for o in items)

            wait_for(
                all_passing,
                timeout=config.timeout,
                interval=2.0,
                message=f"not all {n} Rollouts Progressing with a Pass",
            )
            ramp = time.perf_counter() - started
            rss_after_ramp = sample_process(pid).rss_kib

            # One interval to settle: every loop is then on its own steady schedule.
            time.sleep(interval)
            pids = {comm: p for comm, p in child_processes().items() if p != pid}
            pids["flagops operator"] = pid
            analyses_before = _analysis_counts(operator)
            counters_before = read_operator(operator)
            queries_before = world.prometheus_queries()
            reconcile_before = histogram_sum_count(
                operator.metrics(), "flagops_reconcile_seconds", {"kind": "rollouts"}
            )
            buckets_before = _reconcile_buckets(operator)
            cpu_before = _process_cpu(pids)
            busy_before = machine_busy()
            window_start = time.perf_counter()
            # The window is the quantity measured: K analysis intervals of steady state.
            time.sleep(interval * config.window_intervals)
            window = time.perf_counter() - window_start
            cpu_after = _process_cpu(pids)
            busy_after = machine_busy()
            analyses_after = _analysis_counts(operator)
            counters_after = read_operator(operator)
            queries_after = world.prometheus_queries()
            reconcile_after = histogram_sum_count(
                operator.metrics(), "flagops_reconcile_seconds", {"kind": "rollouts"}
            )
            buckets_after = _reconcile_buckets(operator)
            items = world.rollouts(namespace)
            peak = sample_process(pid).peak_rss_kib

        phases: dict[str, int] = {}
        for obj in items:
            phase = str(status_of(obj).get("phase"))
            phases[phase] = phases.get(phase, 0) + 1
        busy = (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1.0)
        return ScaleResult(
            rollouts=n,
            interval=interval,
            ramp_seconds=ramp,
            window_seconds=window,
            rss_after_ramp_kib=rss_after_ramp,
            rss_max_kib=rss.max_kib,
            rss_peak_kib=peak,
            lateness=counters_after.minus(counters_before),
            analyses={v: analyses_after[v] - analyses_before[v] for v in analyses_after},
            prometheus_queries=queries_after - queries_before,
            cpu_seconds={
                name: cpu_after[name] - cpu_before[name] for name in cpu_after if name in cpu_before
            },
            machine_busy_share=busy,
            reconcile_mean=(reconcile_after[0] - reconcile_before[0])
            / max(reconcile_after[1] - reconcile_before[1], 1.0),
            reconcile_p50=bucket_percentile(buckets_before, buckets_after, 50),
            reconcile_p99=bucket_percentile(buckets_before, buckets_after, 99),
            phases=phases,
        )
    finally:
        operator.stop()


# -- figures ------------------------------------------------------------------------------


def scale_rows(result: ScaleResult) -> list[Row]:
    n, interval = result.rollouts, result.interval
    intervals = result.window_seconds / interval
    late = result.lateness
    share = late.on_time / late.analyses_timed if late.analyses_timed else 0.0
    analyses = sum(result.analyses.values())
    per_interval = analyses / intervals
    cpu = {name: sec / intervals for name, sec in result.cpu_seconds.items()}
    cpu_text = ", ".join(f"{name} {sec:.2f} s" for name, sec in sorted(cpu.items()))
    op_cpu = cpu.get("flagops operator", 0.0)
    return [
        Row(
            f"{n} Rollouts: operator RSS (max of 1 s samples in ramp+window; VmHWM)",
            f"<= {SCALE_RSS_MIB:.0f} MB",
            f"{fmt_mib(result.rss_max_kib)}; VmHWM {fmt_mib(result.rss_peak_kib)}",
            verdict(max(result.rss_max_kib, result.rss_peak_kib) / 1024 <= SCALE_RSS_MIB),
        ),
        Row(
            f"{n} Rollouts: analyses on time each {interval:g} s "
            f"(lateness <= {ON_TIME_SECONDS:g} s, flagops_analysis_lateness_seconds)",
            "100%",
            f"{100 * share:.1f}% of {late.analyses_timed:,.0f} analyses "
            f"({late.analyses_timed / max(n * intervals, 1):.1%} of {n} x {intervals:.1f}); "
            f"p99 <= {late.late_p99_bound:g} s",
            verdict(bool(late.analyses_timed) and share == 1.0),
        ),
        Row(
            "  analyses per interval (flagops_analysis_total), verdicts",
            f"{n}",
            f"{per_interval:.1f}; "
            + ", ".join(f"{v} {c:.0f}" for v, c in result.analyses.items() if c),
        ),
        Row(
            "Prometheus queries per interval: operator (flagops_analysis_queries_total) / "
            "Prometheus's own count",
            "",
            f"{sum(result.lateness.queries.values()) / intervals:.1f} / "
            f"{result.prometheus_queries / intervals:.1f}"
            f" ({result.prometheus_queries / result.window_seconds:.1f} queries/s)",
        ),
        Row(
            "CPU per interval (user+system)",
            "",
            f"{cpu_text}; operator {100 * op_cpu / interval:.0f}% of one core; "
            f"whole machine {100 * result.machine_busy_share:.0f}% busy",
        ),
        Row(
            "  reconcile round (flagops_reconcile_seconds{kind=rollouts}): mean; p50 / p99 bucket",
            "",
            f"{fmt_ms(result.reconcile_mean)}; <= {result.reconcile_p50:g} s / "
            f"<= {result.reconcile_p99:g} s",
        ),
        Row(
            "  ramp: create all, until every Rollout Progressing with a Pass",
            "",
            f"{result.ramp_seconds:.1f} s; RSS then {fmt_mib(result.rss_after_ramp_kib)}",
        ),
        Row("  phases at the end", "", fmt_counts(result.phases)),
    ]


# -- running ------------------------------------------------------------------------------
