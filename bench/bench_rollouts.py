"""Rollouts on a real apiserver and Prometheus: action latency, stage publishing, 200 Rollouts.

The operator runs as `flagops run` in a child process (a fresh one per scenario)
against a local etcd + kube-apiserver; Debian's `prometheus` scrapes stand-in apps
(`flagops_devtools.testing.traffic.TrafficGenerator`, clean traffic) every second. Watches in
threads of this process timestamp every version of the Rollouts and of the
`feature-flags` ConfigMap.

    python -m bench.bench_rollouts [--quick] [--actions 60] [--rounds 5] [--rollouts 200] ...

Scenarios, in order:
  A. actions: pause and resume in turn on one Progressing Rollout (stageDuration 1h, so
     it never advances meanwhile); latency from just before the annotation patch to the
     watch event whose status.lastAction.id is that action's id. Then the same through
     RolloutManager (what `kubectl flagops pause` waits for).
  B. stages: Rollouts with clean traffic, stageDuration 2s, interval 1s, DISABLED -> FULL,
     one after the other; for every stage change, the time from the passing analysis
     (status.lastAnalysis.time, the operator's clock = this machine's) and from the
     status write seen on the Rollout watch to the ConfigMap watch event whose
     flags.json shows the new stage.
  C. scale: N flags with a Rollout each (clean traffic on 4 integrations), stageDuration
     1h so all stay Progressing; after all have a Pass, a window of K intervals: operator
     RSS, analyses on time (flagops_analysis_lateness_seconds: lateness <= 1 s against
     the tick grid), Prometheus queries per interval (operator's
     flagops_analysis_queries_total and
     Prometheus's own prometheus_http_requests_total{handler="/api/v1/query"}), CPU per
     interval of the operator, apiserver, etcd and Prometheus.
  D. fleet (issue 12; not in the default --only): N Rollouts and N flags per size
     (--sizes, 30 s interval) in one operator process, each size on a fresh control
     plane; the same with --analysis-grouping off (--baseline-sizes); then --shards
     shards of --shard-size Rollouts with a standby each, and the takeover after
     SIGKILL. Figures are counter deltas over a window (bench/rollouts/meters.py).

    python -m bench.bench_rollouts --only D --sizes 1000,3000,10000 --baseline-sizes 1000 \
        --shards 2 --shard-size 5000
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bench.common import (
    Row,
    control_plane_with_crds,
    print_machine,
    print_table,
)
from bench.rollouts.actions import action_rows, run_actions
from bench.rollouts.fleet_main import run_fleet
from bench.rollouts.fleet_run import FleetOptions
from bench.rollouts.scale import run_scale, scale_rows
from bench.rollouts.stages import run_stages, stage_rows
from bench.rollouts.world import INTEGRATIONS, Config, World
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.traffic import TrafficGenerator

# -- running ------------------------------------------------------------------------------


def run(config: Config, fleet: FleetOptions | None = None) -> int:
    failed = 0
    if any(letter in config.only for letter in "ABC"):
        failed += run_abc(config)
    if "D" in config.only and fleet is not None:
        failed += run_fleet(fleet, config.rate)
    return 1 if failed else 0


def run_abc(config: Config) -> int:
    generators = [
        TrafficGenerator(integration, integration, rate=config.rate).start()
        for integration in INTEGRATIONS
    ]
    rows: list[Row] = []
    try:
        with (
            control_plane_with_crds() as plane,
            PrometheusServer([g.target for g in generators], scrape_interval="1s") as prometheus,
        ):
            print_machine(plane, f"; config {config}")
            for generator in generators:
                prometheus.wait_for_scrape(generator.target)
            world = World(plane, prometheus, config)
            try:
                if "A" in config.only:
                    print(f"A: {config.actions} actions ...", flush=True)
                    rows += action_rows(run_actions(world))
                if "B" in config.only:
                    print(f"B: {config.rounds} + {config.rounds} Rollouts to FULL ...", flush=True)
                    rows += stage_rows(*run_stages(world), busy=config.busy)
                if "C" in config.only:
                    print(
                        f"C: {config.rollouts} Rollouts, interval {config.interval_seconds} s, "
                        f"window {config.window_intervals} intervals ...",
                        flush=True,
                    )
                    rows += scale_rows(run_scale(world))
            finally:
                world.close()
    finally:
        for generator in generators:
            generator.stop()
    print()
    print_table(rows)
    return 0


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(part.replace("_", "")) for part in text.split(",") if part.strip())


def parse_config(argv: Sequence[str]) -> tuple[Config, FleetOptions]:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_rollouts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small run: 20 actions, 2 stage rounds, 20 Rollouts at 5 s for 4 intervals",
    )
    parser.add_argument("--actions", type=int, help="annotation actions timed (60)")
    parser.add_argument("--manager-actions", type=int, help="RolloutManager calls timed (20)")
    parser.add_argument(
        "--action-gap", type=float, default=0.25, help="pause after each action is seen"
    )
    parser.add_argument("--rounds", type=int, help="Rollouts taken DISABLED -> FULL in B (5)")
    parser.add_argument(
        "--busy", type=int, help="other Rollouts analysing every 1 s in B's busy rounds (10)"
    )
    parser.add_argument("--rollouts", type=int, help="Rollouts in C (200)")
    parser.add_argument("--interval", type=int, help="analysis.interval in C, seconds (10)")
    parser.add_argument("--window", type=int, help="intervals measured in C (12)")
    parser.add_argument("--rate", type=float, default=50.0, help="operations/s per integration")
    parser.add_argument("--only", default="ABC", help="scenarios to run, e.g. C or AB (ABC)")
    parser.add_argument("--timeout", type=float, default=600, help="deadline per wait")
    fleet = parser.add_argument_group("D, fleet (issue 12)")
    fleet.add_argument(
        "--sizes", type=_sizes, default=(1000, 3000, 10000), help="Rollouts per one-process run"
    )
    fleet.add_argument(
        "--baseline-sizes",
        type=_sizes,
        default=(1000,),
        help="the same with --analysis-grouping off (today's analysis; '' for none)",
    )
    fleet.add_argument(
        "--flags", type=int, help="FeatureFlags per run, at least one per Rollout (default: equal)"
    )
    fleet.add_argument("--fleet-interval", type=int, default=30, help="analysis.interval (s)")
    fleet.add_argument("--fleet-window", type=int, default=6, help="intervals measured")
    fleet.add_argument("--settle", type=int, default=1, help="intervals after the ramp, unmeasured")
    fleet.add_argument("--per-namespace", type=int, default=1000, help="Rollouts per namespace")
    fleet.add_argument(
        "--heartbeat", type=int, help="operator's --status-heartbeat (default: the operator's)"
    )
    fleet.add_argument("--shards", type=int, default=2, help="shards of the sharded run (0: none)")
    fleet.add_argument("--shard-size", type=int, default=5000, help="Rollouts per shard")
    fleet.add_argument("--peering-lifetime", type=int, default=5, help="sharded replicas' (s)")
    fleet.add_argument("--fleet-timeout", type=float, default=3600, help="deadline per fleet wait")
    args = parser.parse_args(list(argv))
    quick = args.quick
    window = args.window or (4 if quick else 12)
    options = FleetOptions(
        sizes=args.sizes,
        baseline_sizes=args.baseline_sizes,
        flags=args.flags,
        interval_seconds=args.fleet_interval,
        window_intervals=args.fleet_window,
        settle_intervals=args.settle,
        per_namespace=args.per_namespace,
        heartbeat=args.heartbeat,
        shards=args.shards,
        shard_size=args.shard_size,
        peering_lifetime=args.peering_lifetime,
        timeout=args.fleet_timeout,
    )
    config = Config(
        actions=args.actions or (20 if quick else 60),
        manager_actions=args.manager_actions
        if args.manager_actions is not None
        else (6 if quick else 20),
        action_gap=args.action_gap,
        rounds=args.rounds or (2 if quick else 5),
        busy=args.busy if args.busy is not None else (5 if quick else 10),
        rollouts=args.rollouts or (20 if quick else 200),
        interval_seconds=args.interval or (5 if quick else 10),
        window_intervals=window,
        rate=args.rate,
        timeout=args.timeout,
        only=args.only.upper(),
    )
    return config, options


def main(argv: Sequence[str] | None = None) -> int:
    # `python -m bench` calls main() for the full run; it must not read bench's own argv.
    return run(*parse_config(argv if argv is not None else []))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
