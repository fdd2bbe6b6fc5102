"""Rollouts on a real apiserver and a real Prometheus: action latency, stage -> ConfigMap, scale.

The operator runs as `flagops run` in a child process; Debian's `prometheus`
scrapes a stand-in app (`flagops.testing.traffic`) with clean traffic; watches
in this process timestamp every Rollout status and ConfigMap version.

    python -m bench.bench_rollouts [--quick] [--actions 50] [--rollouts 200] ...

Scenarios:
  1. Action annotation -> `status.lastAction` shows its id: pause and resume in
     turn on one Rollout (autoAdvance off, so nothing else moves it).
  2. Stage change -> ConfigMap: one Rollout advancing DISABLED -> FULL on Pass
     verdicts; per step, from the arrival of the status that records the new stage
     (written with the Pass verdict that caused it) to the arrival of the ConfigMap
     version whose entry shows that stage.
  3. N Rollouts (and N flags) in one operator, analysis every --interval: RSS,
     the gaps between consecutive analyses of each Rollout over a few intervals,
     and Prometheus queries per interval (Prometheus' own request counter).
"""

from __future__ import annotations

import argparse
import itertools
import platform
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from bench.common import (
    GROUP,
    VERSION,
    ConfigMapWatch,
    FlagsDoc,
    ObjectWatch,
    Row,
    control_plane_with_crds,
    latency_summary,
    machine_summary,
    print_table,
    sample_process,
    verdict,
)
from flagops.api.actions import ACTION_ANNOTATION, format_action, new_action_id
from flagops.api.stages import ORDER, Stage
from flagops.testing.controlplane import ControlPlane
from flagops.testing.operator import OperatorProcess
from flagops.testing.prometheus import PrometheusServer
from flagops.testing.traffic import TrafficGenerator
from flagops.testing.wait import wait_for

INTEGRATION = "calendar_sync"

# Targets of issue 3.
ACTION_P50_MS = 300.0
STAGE_TO_CONFIGMAP_MS = 1000.0
SCALE_RSS_MIB = 200.0


@dataclass(frozen=True)
class Config:
    actions: int
    rollouts: int
    interval_seconds: int
    stage_seconds: int
    intervals: int
    timeout: float


def flag_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FeatureFlag",
        "metadata": {"name": name},
        "spec": {
            "key": name.replace("-", "_"),
            "integration": INTEGRATION,
            "enabled": False,
            "allowedCohorts": ["beta"],
        },
    }


def rollout_body(name: str, interval: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "flagRef": {"name": name},
            "analysis": {"interval": interval, "minSampleSize": 20},
            **spec,
        },
    }


def rollout_view(obj: Any) -> dict[str, Any]:
    """The few fields the benchmark reads from a Rollout event."""
    status = obj.get("status") or {}
    return {
        "name": obj["metadata"]["name"],
        "stage": status.get("stage"),
        "phase": status.get("phase"),
        "action_id": (status.get("lastAction") or {}).get("id"),
        "analysis_time": (status.get("lastAnalysis") or {}).get("time"),
        "verdict": (status.get("lastAnalysis") or {}).get("verdict"),
    }


def view_has(key: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    def check(view: dict[str, Any]) -> bool:
        return bool(view[key] == value)

    return check


def published_stage_at_least(key: str, stage: Stage) -> Callable[[FlagsDoc], bool]:
    def check(flags: FlagsDoc) -> bool:
        shown = str((flags.get(key) or {}).get("stage"))
        return shown in Stage.__members__ and ORDER.index(Stage(shown)) >= ORDER.index(stage)

    return check


def prometheus_queries(prometheus: PrometheusServer) -> float:
    """Queries Prometheus has answered so far (instant and range), from its own /metrics."""
    with urllib.request.urlopen(f"{prometheus.url}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "prometheus_http_requests":
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("handler") in (
                "/api/v1/query",
                "/api/v1/query_range",
            ):
                total += float(sample.value)
    return total


class Bench:
    def __init__(self, plane: ControlPlane, prometheus: PrometheusServer, config: Config) -> None:
        from kubernetes import client

        self.plane = plane
        self.prometheus = prometheus
        self.config = config
        self.api = plane.api_client()
        self.custom: Any = client.CustomObjectsApi(self.api)

    def close(self) -> None:
        self.api.close()

    def start_operator(self, namespace: str) -> OperatorProcess:
        return OperatorProcess(
            self.plane.kubeconfig, [namespace], prometheus_address=self.prometheus.url
        ).start(timeout=120)

    def create(self, namespace: str, plural: str, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)

    def rollout_watch(self, namespace: str) -> ObjectWatch:
        return ObjectWatch(
            self.custom.list_namespaced_custom_object,
            (GROUP, VERSION, namespace, "rollouts"),
            rollout_view,
        ).start()

    # -- 1 ---------------------------------------------------------------------------------

    def actions(self, namespace: str) -> list[float]:
        self.create(namespace, "featureflags", flag_body("actions"))
        self.create(namespace, "rollouts", rollout_body("actions", "30s", autoAdvance=False))
        watch = self.rollout_watch(namespace)
        try:
            # Validated and waiting for a person: the Rollout is settled before timing starts.
            watch.wait_until(lambda v: v["phase"] is not None, 0, self.config.timeout)
            latencies: list[float] = []
            for k in range(self.config.actions):
                verb = "pause" if k % 2 == 0 else "resume"
                action_id = new_action_id()
                value = format_action(verb, action_id, reason="benchmark")
                mark = watch.mark()
                started = time.perf_counter()
                self.custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    namespace,
                    "rollouts",
                    "actions",
                    {"metadata": {"annotations": {ACTION_ANNOTATION: value}}},
                )
                at, _, _ = watch.wait_until(
                    view_has("action_id", action_id), mark, self.config.timeout
                )
                latencies.append(at - started)
            return latencies
        finally:
            watch.stop()

    # -- 2 ---------------------------------------------------------------------------------

    def stage_to_configmap(self, namespace: str) -> list[tuple[str, float, bool]]:
        """Per step: (stage, status arrival -> ConfigMap arrival, whether that exact stage was
        ever published rather than folded into a later one)."""
        cm_watch = ConfigMapWatch(self.api, namespace).start()
        watch = self.rollout_watch(namespace)
        try:
            self.create(namespace, "featureflags", flag_body("stages"))
            duration = f"{self.config.stage_seconds}s"
            self.create(namespace, "rollouts", rollout_body("stages", "1s", stageDuration=duration))
            steps: list[tuple[str, float, bool]] = []
            since = 0
            for stage in ORDER[1:]:
                at, _, index = watch.wait_until(
                    view_has("stage", stage.value), since, self.config.timeout
                )
                since = index + 1
                # "This stage or a later one": a write may fold two quick steps into one.
                seen = cm_watch.wait_until(
                    published_stage_at_least("stages", stage), 0, self.config.timeout
                )
                shown = (seen.flags or {}).get("stages", {}).get("stage")
                steps.append((stage.value, seen.at - at, shown == stage.value))
            return steps
        finally:
            watch.stop()
            cm_watch.stop()

    # -- 3 ---------------------------------------------------------------------------------

    def scale(self, namespace: str, operator: OperatorProcess) -> dict[str, float]:
        count, interval = self.config.rollouts, self.config.interval_seconds
        watch = self.rollout_watch(namespace)
        try:
            names = [f"scale-{i:03d}" for i in range(count)]
            for name in names:
                self.create(namespace, "featureflags", flag_body(name))
            for name in names:
                # A long stage keeps every Rollout analysing in one stage for the whole window.
                self.create(
                    namespace, "rollouts", rollout_body(name, f"{interval}s", stageDuration="1h")
                )

            def analysed() -> bool:
                latest = {v["name"]: v for _, _, v in watch.snapshot()}
                return len(latest) == count and all(v["analysis_time"] for v in latest.values())

            wait_for(
                analysed,
                timeout=self.config.timeout,
                interval=1.0,
                message="not every Rollout analysed once",
            )
            mark = watch.mark()
            queries_before = prometheus_queries(self.prometheus)
            started = time.perf_counter()
            # The window is the quantity measured: a fixed number of analysis intervals.
            time.sleep(interval * self.config.intervals)
            window = time.perf_counter() - started
            queries = prometheus_queries(self.prometheus) - queries_before
            pid = operator.process.pid
            assert pid is not None
            sample = sample_process(pid)
        finally:
            watch.stop()
        # Gaps between consecutive analyses per Rollout, by when the watch saw them.
        seen: dict[str, list[float]] = {}
        last_time: dict[str, str] = {}
        for at, _, view in watch.snapshot(mark):
            name, when = view["name"], view["analysis_time"]
            if when and last_time.get(name) != when:
                last_time[name] = when
                seen.setdefault(name, []).append(at)
        gaps = [b - a for times in seen.values() for a, b in itertools.pairwise(times)]
        analyses = sum(len(times) for times in seen.values())
        late = sum(1 for g in gaps if g > interval * 1.5)
        return {
            "window": window,
            "analyses": analyses,
            "expected": count * window / interval,
            "rollouts_analysed": len(seen),
            "max_gap": max(gaps, default=0.0),
            "late_gaps": late,
            "gaps": len(gaps),
            "queries_per_interval": queries / (window / interval),
            "rss_mib": sample.rss_kib / 1024,
            "peak_rss_mib": sample.peak_rss_kib / 1024,
        }


def run(config: Config) -> int:
    rows: list[Row] = []
    traffic = TrafficGenerator(INTEGRATION, "bench", rate=50).start()
    try:
        with (
            PrometheusServer([traffic.target], scrape_interval="1s") as prometheus,
            control_plane_with_crds() as plane,
        ):
            prometheus.wait_for_scrape(traffic.target)
            print(
                f"machine: {machine_summary()}; Python {platform.python_version()}; "
                f"control plane binaries {plane.bin_dir.name}",
                flush=True,
            )
            bench = Bench(plane, prometheus, config)
            try:
                rows += _one_rollout(bench, plane)
                rows += _many_rollouts(bench, plane, config)
            finally:
                bench.close()
    finally:
        traffic.stop()
    print()
    print_table(rows)
    return 0


def _one_rollout(bench: Bench, plane: ControlPlane) -> list[Row]:
    namespace = plane.create_namespace("bench-rollouts-one")
    operator = bench.start_operator(namespace)
    try:
        print(f"1: {bench.config.actions} actions ...", flush=True)
        actions = latency_summary(bench.actions(namespace))
        print("2: one Rollout DISABLED -> FULL ...", flush=True)
        steps = bench.stage_to_configmap(namespace)
    finally:
        operator.stop()
    worst = max(seconds for _, seconds, _ in steps) * 1000
    folded = [stage for stage, _, shown in steps if not shown]
    return [
        Row(
            f"action -> status.lastAction: p50 ({actions['n']:.0f} actions)",
            f"<= {ACTION_P50_MS:.0f} ms",
            f"{actions['p50']:.0f} ms",
            verdict(actions["p50"] <= ACTION_P50_MS),
        ),
        Row(
            "action -> status.lastAction: p90 / p99 / max",
            "",
            f"{actions['p90']:.0f} / {actions['p99']:.0f} / {actions['max']:.0f} ms",
        ),
        Row(
            "stage in status -> ConfigMap shows it: worst step",
            f"<= {STAGE_TO_CONFIGMAP_MS:.0f} ms",
            f"{worst:.0f} ms",
            verdict(worst <= STAGE_TO_CONFIGMAP_MS),
        ),
        Row(
            "stage -> ConfigMap per step",
            "",
            ", ".join(f"{stage} {1000 * s:.0f}" for stage, s, _ in steps) + " ms",
        ),
        Row(
            "stages never published on their own (folded into the next write)",
            "",
            ", ".join(folded) or "none",
        ),
    ]


def _many_rollouts(bench: Bench, plane: ControlPlane, config: Config) -> list[Row]:
    namespace = plane.create_namespace("bench-rollouts-many")
    operator = bench.start_operator(namespace)
    try:
        print(
            f"3: {config.rollouts} Rollouts, analysis every {config.interval_seconds} s, "
            f"{config.intervals} intervals ...",
            flush=True,
        )
        s = bench.scale(namespace, operator)
    finally:
        operator.stop()
    n = config.rollouts
    on_time = s["late_gaps"] == 0 and s["rollouts_analysed"] == n
    return [
        Row(
            f"{n} Rollouts: operator RSS (peak)",
            f"<= {SCALE_RSS_MIB:.0f} MiB",
            f"{s['rss_mib']:.0f} MiB ({s['peak_rss_mib']:.0f})",
            verdict(s["peak_rss_mib"] <= SCALE_RSS_MIB),
        ),
        Row(
            f"{n} Rollouts: analysed on time (gaps > 1.5 x interval)",
            "0 late, all analysed",
            f"{s['late_gaps']:.0f} of {s['gaps']:.0f} late; {s['rollouts_analysed']:.0f}/{n} seen; "
            f"max gap {s['max_gap']:.1f} s",
            verdict(on_time),
        ),
        Row(
            f"{n} Rollouts: analyses in {s['window']:.0f} s",
            "",
            f"{s['analyses']:.0f} (expected ~{s['expected']:.0f})",
        ),
        Row(
            f"{n} Rollouts: Prometheus queries per interval",
            "",
            f"{s['queries_per_interval']:.0f}",
        ),
    ]


def parse_config(argv: Sequence[str]) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_rollouts",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="10 actions, 20 Rollouts")
    parser.add_argument("--actions", type=int, help="actions timed (50)")
    parser.add_argument("--rollouts", type=int, help="Rollouts in one operator (200)")
    parser.add_argument("--interval", type=int, default=10, help="analysis interval, seconds")
    parser.add_argument(
        "--stage-seconds", type=int, default=5, help="stageDuration of the advancing Rollout"
    )
    parser.add_argument("--intervals", type=int, default=4, help="intervals observed")
    parser.add_argument("--timeout", type=float, default=600, help="deadline per wait")
    args = parser.parse_args(list(argv))
    return Config(
        actions=args.actions or (10 if args.quick else 50),
        rollouts=args.rollouts or (20 if args.quick else 200),
        interval_seconds=args.interval,
        stage_seconds=args.stage_seconds,
        intervals=args.intervals,
        timeout=args.timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    # `python -m bench` calls main() for the full run; it must not read bench's own argv.
    return run(parse_config(argv if argv is not None else []))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
