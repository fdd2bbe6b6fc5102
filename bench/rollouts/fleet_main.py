"""D. fleet (issue 12): the scaling curve, today's baseline beside it, and two shards.

One Prometheus and four stand-in apps (one integration each, clean traffic) serve
every run; each run has a control plane of its own. Runs go one after the other so
that no run's CPU figures include another's.
"""

from __future__ import annotations

import signal
import time

from bench.rollouts.fleet_run import OPERATOR, FleetOptions, RunResult, run_one
from bench.rollouts.fleet_shards import Takeover, active, run_shards, shard_sizes
from bench.rollouts.fleet_table import Column, print_grid
from bench.rollouts.world import INTEGRATIONS, prometheus_query_count
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.traffic import TrafficGenerator

TAKEOVER_GOAL_SECONDS = 10.0


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def print_plan(options: FleetOptions) -> None:
    total = 0.0
    for size in options.sizes:
        total += options.estimate(size)
        say(f"plan: {size:,} Rollouts grouped, about {options.estimate(size) / 60:.0f} min")
    for size in options.baseline_sizes:
        total += options.estimate(size)
        say(f"plan: {size:,} Rollouts, grouping off, about {options.estimate(size) / 60:.0f} min")
    if options.shards:
        n = options.shards * options.shard_size
        minutes = options.estimate(n, processes=2 * options.shards) / 60
        total += minutes * 60
        say(f"plan: {options.shards} shards x {options.shard_size:,}, about {minutes:.0f} min")
    say(f"plan: about {total / 60:.0f} min in all")


def print_takeover(takeover: Takeover, lifetime: int) -> None:
    all_analysed = (
        f"{takeover.all_analysed:.1f} s" if takeover.all_analysed is not None else "not reached"
    )
    others = (
        f"{100 * takeover.others_on_time:.1f}% of {takeover.others_analyses:,.0f}"
        if takeover.others_on_time is not None
        else f"n/a ({takeover.others_analyses:,.0f} analyses)"
    )
    ok = takeover.first_analysis <= TAKEOVER_GOAL_SECONDS
    queries = ", ".join(f"{k} {v:,.0f}" for k, v in takeover.queries.items())
    print(
        f"Takeover: SIGKILL of shard {takeover.shard}'s active replica "
        f"({takeover.rollouts:,} Rollouts, --peering-lifetime {lifetime})"
    )
    print("| after SIGKILL | goal | measured | result |")
    print("|---|---|---|---|")
    print(
        f"| standby's first analysis | <= {TAKEOVER_GOAL_SECONDS:g} s | "
        f"{takeover.first_analysis:.1f} s | {'PASS' if ok else 'MISS'} |"
    )
    print(
        f"| standby has analysed as often as its shard has Rollouts | printed | {all_analysed} | |"
    )
    print(
        f"| a flag edit in each of its namespaces published (slowest) | printed | "
        f"{takeover.publish_max:.1f} s | |"
    )
    print(f"| standby's Prometheus queries meanwhile, by kind | | {queries} | |")
    print(f"| other shards' analyses on time meanwhile | >= 99% | {others} | |")
    print(flush=True)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    # `finally` blocks then stop the operators and control planes this run started.
    raise SystemExit(128 + signum)


def run_fleet(options: FleetOptions, rate: float) -> int:
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    print_plan(options)
    generators = [
        TrafficGenerator(integration, integration, rate=rate).start()
        for integration in INTEGRATIONS
    ]
    results: list[RunResult] = []
    try:
        with PrometheusServer([g.target for g in generators], scrape_interval="1s") as prometheus:
            for generator in generators:
                prometheus.wait_for_scrape(generator.target)

            def queries() -> float:
                return prometheus_query_count(prometheus)

            runs = [(size, "on") for size in options.sizes] + [
                (size, "off") for size in options.baseline_sizes
            ]
            for size, grouping in runs:
                result = run_one(options, prometheus, queries, size, grouping, say)
                results.append(result)
                # Each size's figures as soon as it is done: a long run that fails later
                # still leaves them in the log.
                print_grid(result.label, [_column(result)], _column(result))
            if options.shards:
                sharded, takeover = run_shards(options, prometheus, queries, say)
    finally:
        for generator in generators:
            generator.stop()
    if len(results) > 1:
        columns = [_column(r) for r in results]
        grouped = [c for c in columns if c.run.grouping == "on"] or columns
        print_grid(
            f"One process, interval {options.interval_seconds} s, window "
            f"{options.window_intervals} intervals",
            columns,
            max(grouped, key=lambda c: c.rollouts),
        )
    if options.shards:
        sizes = shard_sizes(sharded.rollouts, options)
        columns = [
            Column(f"shard {i} ({sizes[i]:,})", sharded, active(i), sizes[i])
            for i in range(options.shards)
        ]
        print_grid(
            f"{options.shards} shards (process-wide figures: Prometheus queries, apiserver "
            "and etcd CPU, status writes counted by the apiserver, are for all shards)",
            columns,
            columns[0],
        )
        standby_cpu = {
            k: v / sharded.window.cpu_span
            for k, v in sharded.window.cpu_seconds.items()
            if "standby" in k
        }
        print(
            "standby replicas during the window: "
            + ", ".join(
                f"{k} CPU {100 * v:.0f}% of a core, RSS max {sharded.rss_max_kib[k] / 1024:.0f} MiB"
                for k, v in sorted(standby_cpu.items())
            )
        )
        print_takeover(takeover, options.peering_lifetime)
    return 0


def _column(result: RunResult) -> Column:
    title = f"{result.rollouts:,}" + (" off" if result.grouping == "off" else "")
    return Column(title, result, OPERATOR, result.rollouts)
