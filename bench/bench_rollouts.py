"""Rollouts on a real apiserver and Prometheus: action latency, stage publishing, 200 Rollouts.

The operator runs as `flagops run` in a child process (a fresh one per scenario)
against a local etcd + kube-apiserver; Debian's `prometheus` scrapes stand-in apps
(`flagops.testing.traffic.TrafficGenerator`, clean traffic) every second. Watches in
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
     RSS, every Rollout's gaps between consecutive analyses (status.healthHistory),
     Prometheus queries per interval (operator's flagops_analysis_total x 2 and
     Prometheus's own prometheus_http_requests_total{handler="/api/v1/query"}), CPU per
     interval of the operator, apiserver, etcd and Prometheus.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import math
import os
import platform
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    GROUP,
    VERSION,
    ConfigMapWatch,
    FlagsDoc,
    Observed,
    Row,
    WatchLog,
    control_plane_with_crds,
    counter_value,
    histogram_sum_count,
    latency_summary,
    machine_summary,
    percentile,
    print_table,
    sample_process,
    verdict,
)
from flagops.api.actions import ACTION_ANNOTATION, format_action, new_action_id
from flagops.rollouts.analysis import QUERIES_PER_ANALYSIS
from flagops.testing.controlplane import ControlPlane
from flagops.testing.operator import OperatorProcess
from flagops.testing.prometheus import PrometheusServer
from flagops.testing.traffic import TrafficGenerator
from flagops.testing.wait import wait_for

ROLLOUTS, FLAGS = "rollouts", "featureflags"
INTEGRATIONS = ("calendar_sync", "push_notifications", "shopping_list_sync", "export_pdf")
STAGES = ("DISABLED", "INTERNAL", "BETA", "EARLY_ACCESS", "LIMITED", "GENERAL", "FULL")
PROM_QUERY_HANDLER = "/api/v1/query"

# Targets of issue 3.
ACTION_P50_MS = 300.0
STAGE_PUBLISH_MAX_MS = 1000.0
SCALE_RSS_MIB = 200.0
# "On time": the next analysis starts within this much of one interval after the previous.
ON_TIME_SLACK_SECONDS = 1.0


@dataclass(frozen=True)
class Config:
    actions: int
    manager_actions: int
    action_gap: float
    rounds: int
    busy: int
    rollouts: int
    interval_seconds: int
    window_intervals: int
    rate: float
    timeout: float
    only: str


def parse_time(value: str) -> float:
    """An RFC 3339 status timestamp as Unix seconds."""
    return datetime.fromisoformat(value).timestamp()


def wall_offset() -> float:
    """time.time() - time.perf_counter(): turns watch arrival times into wall clock."""
    return time.time() - time.perf_counter()


# -- watching Rollouts --------------------------------------------------------------------


@dataclass
class RolloutSeen:
    """One version of a Rollout as the watch delivered it."""

    at: float  # perf_counter on arrival
    type: str
    name: str
    status: dict[str, Any] = field(repr=False)

    @property
    def stage(self) -> str | None:
        stage = self.status.get("stage")
        return stage if isinstance(stage, str) else None

    @property
    def action_id(self) -> str | None:
        value = (self.status.get("lastAction") or {}).get("id")
        return value if isinstance(value, str) else None


def _rollout_seen(type_: str, obj: Any, at: float) -> RolloutSeen:
    return RolloutSeen(
        at=at, type=type_, name=str(obj["metadata"]["name"]), status=dict(obj.get("status") or {})
    )


class RolloutWatch(WatchLog[RolloutSeen]):
    """Every version of the Rollouts in a namespace, with arrival times."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        custom: Any = client.CustomObjectsApi(api_client)
        super().__init__(
            f"Rollouts in {namespace}",
            custom.list_namespaced_custom_object,
            (GROUP, VERSION, namespace, ROLLOUTS),
            {},
            _rollout_seen,
        )


def _answers(action_id: str) -> Callable[[RolloutSeen], bool]:
    return lambda seen: seen.action_id == action_id


def _at_stage(name: str, stage: str) -> Callable[[RolloutSeen], bool]:
    return lambda seen: seen.name == name and seen.stage == stage


def _deleted(name: str) -> Callable[[RolloutSeen], bool]:
    return lambda seen: seen.name == name and seen.type == "DELETED"


def _publishes(key: str, stage: str) -> Callable[[FlagsDoc], bool]:
    return lambda flags: (flags.get(key) or {}).get("stage") == stage


# -- processes ----------------------------------------------------------------------------


def child_processes() -> dict[str, int]:
    """This process's direct children by command name (etcd, kube-apiserver, prometheus, ...)."""
    found: dict[str, int] = {}
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            stat = (entry / "stat").read_text()
            comm = stat[stat.index("(") + 1 : stat.rindex(")")]
            ppid = stat.rsplit(")", 1)[1].split()[1]
            if ppid == me:
                found[comm] = int(entry.name)
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    total = sum(values[:8])  # without guest time, which user time already counts
    return float(total - idle), float(total)


class RssSampler:
    """Samples a process's RSS every `period` seconds in a thread; keeps the maximum."""

    def __init__(self, pid: int, period: float = 1.0) -> None:
        self.pid = pid
        self.period = period
        self.max_kib = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)

    def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError, KeyError):
                self.max_kib = max(self.max_kib, sample_process(self.pid).rss_kib)
                self.samples += 1
            if self._stop.wait(self.period):
                return

    @contextlib.contextmanager
    def running(self) -> Iterator[RssSampler]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=5)


# -- the world ----------------------------------------------------------------------------


class World:
    """Control plane, Prometheus and traffic shared by the scenarios."""

    def __init__(self, plane: ControlPlane, prometheus: PrometheusServer, config: Config) -> None:
        from kubernetes import client

        self.plane = plane
        self.prometheus = prometheus
        self.config = config
        self.api = plane.api_client()
        self.custom: Any = client.CustomObjectsApi(self.api)

    def close(self) -> None:
        self.api.close()

    def operator(self, namespace: str) -> OperatorProcess:
        return OperatorProcess(
            self.plane.kubeconfig, [namespace], prometheus_address=self.prometheus.url
        ).start(timeout=120)

    def create_flag(self, namespace: str, name: str, integration: str, **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FeatureFlag",
            "metadata": {"name": name},
            "spec": {"key": name.replace("-", "_"), "integration": integration, **spec},
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, FLAGS, body)

    def create_rollout(
        self, namespace: str, name: str, stage_duration: str, interval: str, min_samples: int = 20
    ) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Rollout",
            "metadata": {"name": name},
            "spec": {
                "flagRef": {"name": name},
                "stageDuration": stage_duration,
                "analysis": {"interval": interval, "minSampleSize": min_samples},
            },
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, ROLLOUTS, body)

    def rollouts(self, namespace: str) -> list[dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, ROLLOUTS)
        items: list[dict[str, Any]] = listed["items"]
        return items

    def prometheus_queries(self) -> float:
        """Instant queries Prometheus itself has answered, all status codes (its own /metrics)."""
        from prometheus_client.parser import text_string_to_metric_families

        url = f"{self.prometheus.url}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "prometheus_http_requests"
            for sample in family.samples
            if sample.name.endswith("_total") and sample.labels.get("handler") == PROM_QUERY_HANDLER
        )


def _status_of(obj: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = obj.get("status") or {}
    return status


def _passing(status: dict[str, Any]) -> bool:
    return (
        status.get("phase") == "Progressing"
        and (status.get("lastAnalysis") or {}).get("verdict") == "Pass"
    )


# -- A: actions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionResult:
    latencies: list[float]
    patch_seconds: list[float]
    noticed_seconds: list[float]  # annotation patch start -> status.lastAction.at (operator clock)
    results: dict[str, int]
    manager_seconds: list[float]
    manager_results: dict[str, int]
    analyses: float
    moved_stage: bool


def run_actions(world: World) -> ActionResult:
    config = world.config
    namespace = world.plane.create_namespace("bench-rollout-actions")
    name = "calendar-sync"
    operator = world.operator(namespace)
    watch = RolloutWatch(world.api, namespace).start()
    try:
        world.create_flag(namespace, name, "calendar_sync", enabled=True, rolloutPercent=10)
        world.create_rollout(namespace, name, stage_duration="1h", interval="30s")
        ready = watch.wait_until(lambda s: _passing(s.status), since=0, timeout=config.timeout)
        stage = ready.stage
        analyses_before = sum(
            counter_value(operator.metrics(), "flagops_analysis_total", {"verdict": v})
            for v in ("Pass", "Fail", "Inconclusive", "Error")
        )
        latencies: list[float] = []
        patch_seconds: list[float] = []
        noticed: list[float] = []
        results: dict[str, int] = {}
        offset = wall_offset()
        for k in range(config.actions):
            verb = "pause" if k % 2 == 0 else "resume"
            action_id = new_action_id()
            body = {
                "metadata": {"annotations": {ACTION_ANNOTATION: format_action(verb, action_id)}}
            }
            mark = watch.mark()
            started = time.perf_counter()
            world.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, ROLLOUTS, name, body
            )
            patch_seconds.append(time.perf_counter() - started)
            seen = watch.wait_until(_answers(action_id), since=mark, timeout=config.timeout)
            latencies.append(seen.at - started)
            last = seen.status["lastAction"]
            noticed.append(parse_time(last["at"]) - (started + offset))
            key = f"{verb}: {last['result']}"
            results[key] = results.get(key, 0) + 1
            if config.action_gap > 0:
                # Spacing so each action meets an idle Rollout loop (its Event posted), as a
                # person's actions would; the gap is not part of any figure.
                time.sleep(config.action_gap)
        analyses_after = sum(
            counter_value(operator.metrics(), "flagops_analysis_total", {"verdict": v})
            for v in ("Pass", "Fail", "Inconclusive", "Error")
        )

        from flagops.clients import RolloutManager

        manager = RolloutManager(world.api, namespace=namespace)
        # An odd count of actions above leaves the Rollout paused: resume first then.
        manager_seconds: list[float] = []
        manager_results: dict[str, int] = {}
        first_resume = config.actions % 2 == 1
        for k in range(config.manager_actions):
            resume = (k % 2 == 0) == first_resume
            started = time.perf_counter()
            outcome = (
                manager.resume_rollout(name, timeout=config.timeout)
                if resume
                else manager.pause_rollout(name, timeout=config.timeout)
            )
            manager_seconds.append(time.perf_counter() - started)
            key = f"{outcome.verb}: {outcome.result}"
            manager_results[key] = manager_results.get(key, 0) + 1
            if config.action_gap > 0:
                time.sleep(config.action_gap)
        final_stage = _status_of(
            world.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, ROLLOUTS, name)
        ).get("stage")
        return ActionResult(
            latencies=latencies,
            patch_seconds=patch_seconds,
            noticed_seconds=noticed,
            results=results,
            manager_seconds=manager_seconds,
            manager_results=manager_results,
            analyses=analyses_after - analyses_before,
            moved_stage=final_stage != stage,
        )
    finally:
        watch.stop()
        operator.stop()


# -- B: stage changes -> ConfigMap --------------------------------------------------------


@dataclass(frozen=True)
class StageStep:
    mode: str  # "lone": the only Rollout in its namespace; "busy": others analysing too
    from_stage: str
    to_stage: str
    verdict: str | None
    from_analysis: float | None  # lastAnalysis.time -> ConfigMap event (wall clock)
    from_status: float  # Rollout watch event with the new stage -> ConfigMap event
    analysis_to_status: float | None  # lastAnalysis.time -> Rollout watch event


def _first_showing(
    watch: ConfigMapWatch, key: str, stage: str, since: int
) -> tuple[int, Observed] | None:
    """The first ConfigMap version at or after `since` whose flag `key` is at `stage`."""
    for index, observed in enumerate(watch.events[since:], start=since):
        if observed.flags is not None and (observed.flags.get(key) or {}).get("stage") == stage:
            return index, observed
    return None


def _stage_round(
    world: World,
    watch: RolloutWatch,
    cm_watch: ConfigMapWatch,
    namespace: str,
    name: str,
    mode: str,
) -> tuple[list[StageStep], list[str]]:
    """One Rollout DISABLED -> FULL; every stage change it made, timed to the ConfigMap."""
    timeout = world.config.timeout
    key = name.replace("-", "_")
    steps: list[StageStep] = []
    unpublished: list[str] = []
    offset = wall_offset()
    mark, cm_mark = watch.mark(), cm_watch.mark()
    world.create_flag(namespace, name, "calendar_sync", enabled=False)
    world.create_rollout(namespace, name, stage_duration="2s", interval="1s")
    watch.wait_until(_at_stage(name, "FULL"), since=mark, timeout=timeout)
    cm_watch.wait_for_flags(_publishes(key, "FULL"), since=cm_mark, timeout=timeout)
    previous: str | None = None
    cm_index = cm_mark
    for seen in watch.since(mark):
        if seen.name != name or seen.stage is None or seen.stage == previous:
            continue
        if previous is None:
            previous = seen.stage  # the adopted stage: no change to time
            continue
        found = _first_showing(cm_watch, key, seen.stage, cm_index)
        if found is None:
            unpublished.append(f"{name}: {previous} -> {seen.stage}")
            previous = seen.stage
            continue
        cm_index, published = found
        last = seen.status.get("lastAnalysis") or {}
        analysed = parse_time(last["time"]) if last.get("time") else None
        # Only an analysis of the stage just left caused the step (DISABLED has none).
        if previous == "DISABLED":
            analysed = None
        steps.append(
            StageStep(
                mode=mode,
                from_stage=previous,
                to_stage=seen.stage,
                verdict=last.get("verdict") if analysed is not None else None,
                from_analysis=None if analysed is None else published.at + offset - analysed,
                from_status=published.at - seen.at,
                analysis_to_status=None if analysed is None else seen.at + offset - analysed,
            )
        )
        previous = seen.stage
    cm_watch.forget_documents()
    return steps, unpublished


def run_stages(world: World) -> tuple[list[StageStep], list[str]]:
    """`rounds` lone Rollouts (each deleted once at FULL), then `rounds` more while `busy`
    other Rollouts analyse every second in the same namespace."""
    config = world.config
    namespace = world.plane.create_namespace("bench-rollout-stages")
    operator = world.operator(namespace)
    watch = RolloutWatch(world.api, namespace).start()
    cm_watch = ConfigMapWatch(world.api, namespace).start()
    steps: list[StageStep] = []
    unpublished: list[str] = []
    try:
        for r in range(config.rounds):
            name = f"lone-{r}"
            mark = watch.mark()
            got, missing = _stage_round(world, watch, cm_watch, namespace, name, "lone")
            steps += got
            unpublished += missing
            # Gone before the next round, so that round is alone in the namespace again.
            world.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, ROLLOUTS, name)
            watch.wait_until(_deleted(name), since=mark, timeout=config.timeout)
        if config.busy > 0:
            for i in range(config.busy):
                background = f"busy-{i:02d}"
                world.create_flag(
                    namespace, background, "calendar_sync", enabled=True, rolloutPercent=10
                )
                world.create_rollout(namespace, background, stage_duration="1h", interval="1s")

            def busy_passing() -> bool:
                items = world.rollouts(namespace)
                return sum(1 for o in items if _passing(_status_of(o))) >= config.busy

            wait_for(busy_passing, timeout=config.timeout, message="busy Rollouts not passing")
            for r in range(config.rounds):
                got, missing = _stage_round(
                    world, watch, cm_watch, namespace, f"busy-round-{r}", "busy"
                )
                steps += got
                unpublished += missing
        return steps, unpublished
    finally:
        cm_watch.stop()
        watch.stop()
        operator.stop()


# -- C: many Rollouts ---------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleResult:
    rollouts: int
    interval: float
    ramp_seconds: float
    window_seconds: float
    rss_after_ramp_kib: int
    rss_max_kib: int
    rss_peak_kib: int
    gaps: list[float]
    per_rollout_analyses: list[int]
    stalled: int  # Rollouts whose newest analysis is older than interval + slack at the end
    trailing_max: float
    analyses: dict[str, float]
    prometheus_queries: float
    cpu_seconds: dict[str, float]
    machine_busy_share: float
    reconcile_mean: float
    reconcile_p50: float
    reconcile_p99: float
    bunched: float  # seconds of the interval holding 90% of the analysis starts
    phases: dict[str, int]


def _analysis_times(status: dict[str, Any]) -> list[float]:
    return sorted(
        parse_time(h["time"])
        for h in status.get("healthHistory") or []
        if h.get("source") == "Analysis"
    )


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


def bunching(times: Sequence[float], interval: float, share: float = 0.9) -> float:
    """The shortest stretch of one interval (as a phase, t mod interval) holding `share`
    of the analysis start times: how much the Rollouts' schedules bunch together."""
    phases = sorted(t % interval for t in times)
    if not phases:
        return 0.0
    k = max(1, math.ceil(share * len(phases)))
    wrapped = phases + [p + interval for p in phases]
    return min(wrapped[i + k - 1] - wrapped[i] for i in range(len(phases)))


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
    operator = world.operator(namespace)
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
                return len(items) == n and all(_passing(_status_of(o)) for o in items)

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
            queries_before = world.prometheus_queries()
            reconcile_before = histogram_sum_count(
                operator.metrics(), "flagops_reconcile_seconds", {"kind": "rollouts"}
            )
            buckets_before = _reconcile_buckets(operator)
            cpu_before = _process_cpu(pids)
            busy_before = machine_busy()
            window_start_wall = time.time()
            window_start = time.perf_counter()
            # The window is the quantity measured: K analysis intervals of steady state.
            time.sleep(interval * config.window_intervals)
            window = time.perf_counter() - window_start
            window_end_wall = time.time()
            cpu_after = _process_cpu(pids)
            busy_after = machine_busy()
            analyses_after = _analysis_counts(operator)
            queries_after = world.prometheus_queries()
            reconcile_after = histogram_sum_count(
                operator.metrics(), "flagops_reconcile_seconds", {"kind": "rollouts"}
            )
            buckets_after = _reconcile_buckets(operator)
            items = world.rollouts(namespace)
            peak = sample_process(pid).peak_rss_kib

        gaps: list[float] = []
        per_rollout: list[int] = []
        stalled = 0
        trailing_max = 0.0
        phases: dict[str, int] = {}
        starts: list[float] = []
        for obj in items:
            status = _status_of(obj)
            phase = str(status.get("phase"))
            phases[phase] = phases.get(phase, 0) + 1
            times = _analysis_times(status)
            # The analysis just before the window opens the first gap inside it.
            before = [t for t in times if t < window_start_wall]
            inside = [t for t in times if window_start_wall <= t <= window_end_wall]
            series = before[-1:] + inside
            starts += inside
            gaps += [b - a for a, b in itertools.pairwise(series)]
            per_rollout.append(len(inside))
            trailing = window_end_wall - (series[-1] if series else window_start_wall)
            trailing_max = max(trailing_max, trailing)
            if trailing > interval + ON_TIME_SLACK_SECONDS:
                stalled += 1
        busy = (busy_after[0] - busy_before[0]) / max(busy_after[1] - busy_before[1], 1.0)
        return ScaleResult(
            rollouts=n,
            interval=interval,
            ramp_seconds=ramp,
            window_seconds=window,
            rss_after_ramp_kib=rss_after_ramp,
            rss_max_kib=rss.max_kib,
            rss_peak_kib=peak,
            gaps=gaps,
            per_rollout_analyses=per_rollout,
            stalled=stalled,
            trailing_max=trailing_max,
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
            bunched=bunching(starts, interval),
            phases=phases,
        )
    finally:
        operator.stop()


# -- figures ------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


def action_rows(result: ActionResult) -> list[Row]:
    s = latency_summary(result.latencies)
    patch = latency_summary(result.patch_seconds)
    noticed = latency_summary(result.noticed_seconds)
    rows = [
        Row(
            f"action -> status.lastAction: p50 ({int(s['n'])} actions)",
            f"<= {ACTION_P50_MS:.0f} ms",
            f"{s['p50']:.1f} ms",
            verdict(s["p50"] <= ACTION_P50_MS),
        ),
        Row("action -> status.lastAction: p90 / p99 / max", "", _fmt3(s)),
        Row("  of which the annotation patch call (p50 / p99)", "", _fmt2(patch)),
        Row("  patch start -> lastAction.at, operator's clock (p50 / p99)", "", _fmt2(noticed)),
        Row("  results", "", _counts(result.results)),
        Row(
            "  analyses during the actions (one per action, run at once)",
            "",
            f"{result.analyses:.0f}; stage moved: {'yes' if result.moved_stage else 'no'}",
        ),
    ]
    if result.manager_seconds:
        m = latency_summary(result.manager_seconds)
        rows += [
            Row(
                f"RolloutManager.pause/resume_rollout call: p50 ({int(m['n'])})",
                "",
                f"{m['p50']:.1f} ms",
            ),
            Row("RolloutManager call: p90 / p99 / max", "", _fmt3(m)),
            Row("  results", "", _counts(result.manager_results)),
        ]
    return rows


def _fmt2(s: dict[str, float]) -> str:
    return f"{s['p50']:.1f} / {s['p99']:.1f} ms"


def _fmt3(s: dict[str, float]) -> str:
    return f"{s['p90']:.1f} / {s['p99']:.1f} / {s['max']:.1f} ms"


def stage_rows(steps: list[StageStep], unpublished: list[str], busy: int) -> list[Row]:
    rows: list[Row] = []
    if unpublished:
        rows.append(
            Row("stage changes never seen in the ConfigMap", "0", "; ".join(unpublished), "MISS")
        )
    for mode in ("lone", "busy"):
        chosen = [s for s in steps if s.mode == mode]
        if chosen:
            rows += _stage_mode_rows(chosen, mode, busy)
    return rows


def _stage_mode_rows(steps: list[StageStep], mode: str, busy: int) -> list[Row]:
    where = (
        "alone in its namespace"
        if mode == "lone"
        else f"with {busy} other Rollouts analysing every 1 s in the namespace"
    )
    rows: list[Row] = []
    by_step: dict[tuple[str, str], list[StageStep]] = {}
    for step in steps:
        by_step.setdefault((step.from_stage, step.to_stage), []).append(step)
    for (old, new), group in sorted(by_step.items(), key=lambda kv: STAGES.index(kv[0][1])):
        analysed = [s.from_analysis for s in group if s.from_analysis is not None]
        status = [s.from_status for s in group]
        verdicts = "/".join(sorted({str(s.verdict) for s in group}))
        seen = f"status write seen -> CM p50 {_ms(percentile(status, 50))}, max {_ms(max(status))}"
        if analysed:
            figure = (
                f"Pass -> CM p50 {_ms(percentile(analysed, 50))}, max {_ms(max(analysed))}; {seen}"
            )
        else:
            figure = f"no analysis (leaves DISABLED once Validated); {seen}"
        rows.append(Row(f"  [{mode}] {old} -> {new} (n={len(group)}, {verdicts})", "", figure))
    values = [s.from_analysis for s in steps if s.from_analysis is not None]
    to_status = [s.analysis_to_status for s in steps if s.analysis_to_status is not None]
    every = [s.from_status for s in steps]
    head: list[Row] = []
    if values:
        head.append(
            Row(
                f"Pass verdict -> ConfigMap shows the new stage, {where}: max "
                f"({len(values)} steps)",
                f"<= {STAGE_PUBLISH_MAX_MS:.0f} ms",
                f"{_ms(max(values))} (p50 {_ms(percentile(values, 50))})",
                verdict(max(values) * 1000 <= STAGE_PUBLISH_MAX_MS),
            )
        )
        head.append(
            Row(
                "  of which analysis start -> status write seen (p50 / max)",
                "",
                f"{_ms(percentile(to_status, 50))} / {_ms(max(to_status))}",
            )
        )
    head.append(
        Row(
            f"  status write seen -> ConfigMap seen, all {len(every)} steps (p50 / max)",
            "",
            f"{_ms(percentile(every, 50))} / {_ms(max(every))}",
        )
    )
    return head + rows


def scale_rows(result: ScaleResult) -> list[Row]:
    n, interval = result.rollouts, result.interval
    intervals = result.window_seconds / interval
    late = [g - interval for g in result.gaps]
    on_time = [g for g in result.gaps if g <= interval + ON_TIME_SLACK_SECONDS]
    missed = sum(1 for g in result.gaps if g >= 1.5 * interval)
    share = len(on_time) / len(result.gaps) if result.gaps else 0.0
    all_on_time = bool(result.gaps) and share == 1.0 and result.stalled == 0
    analyses = sum(result.analyses.values())
    per_interval = analyses / intervals
    cpu = {name: sec / intervals for name, sec in result.cpu_seconds.items()}
    cpu_text = ", ".join(f"{name} {sec:.2f} s" for name, sec in sorted(cpu.items()))
    op_cpu = cpu.get("flagops operator", 0.0)
    counts = result.per_rollout_analyses
    return [
        Row(
            f"{n} Rollouts: operator RSS (max of 1 s samples in ramp+window; VmHWM)",
            f"<= {SCALE_RSS_MIB:.0f} MB",
            f"{_mib(result.rss_max_kib)}; VmHWM {_mib(result.rss_peak_kib)}",
            verdict(max(result.rss_max_kib, result.rss_peak_kib) / 1024 <= SCALE_RSS_MIB),
        ),
        Row(
            f"{n} Rollouts: every Rollout analysed each {interval:g} s "
            f"(gap <= interval + {ON_TIME_SLACK_SECONDS:g} s)",
            "100%",
            f"{100 * share:.1f}% of {len(result.gaps)} gaps; late max "
            f"{max(late, default=0):+.2f} s, p99 {percentile(late, 99) if late else 0:+.2f} s, "
            f"p50 {percentile(late, 50) if late else 0:+.2f} s",
            verdict(all_on_time),
        ),
        Row(
            "  analyses per Rollout in the window (min / max); missed intervals "
            "(gap >= 1.5 x interval); Rollouts overdue at the end",
            "",
            f"{min(counts, default=0)} / {max(counts, default=0)} in {intervals:.1f} intervals; "
            f"{missed} missed; {result.stalled} overdue (newest analysis "
            f"{result.trailing_max:.1f} s old at most)",
        ),
        Row(
            "  analyses per interval (flagops_analysis_total), verdicts",
            f"{n}",
            f"{per_interval:.1f}; "
            + ", ".join(f"{v} {c:.0f}" for v, c in result.analyses.items() if c),
        ),
        Row(
            "Prometheus queries per interval: operator (2 x analyses) / Prometheus's own count",
            "",
            f"{QUERIES_PER_ANALYSIS * per_interval:.1f} / "
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
            f"{_ms(result.reconcile_mean)}; <= {result.reconcile_p50:g} s / "
            f"<= {result.reconcile_p99:g} s",
        ),
        Row(
            "  bunching: 90% of the analyses start within this stretch of each interval",
            "",
            f"{result.bunched:.1f} s of {interval:g} s",
        ),
        Row(
            "  ramp: create all, until every Rollout Progressing with a Pass",
            "",
            f"{result.ramp_seconds:.1f} s; RSS then {_mib(result.rss_after_ramp_kib)}",
        ),
        Row("  phases at the end", "", _counts(result.phases)),
    ]


# -- running ------------------------------------------------------------------------------


def run(config: Config) -> int:
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
            print(
                f"machine: {machine_summary()}; Python {platform.python_version()}; "
                f"control plane binaries {plane.bin_dir.name}; config {config}",
                flush=True,
            )
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


def parse_config(argv: Sequence[str]) -> Config:
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
    parser.add_argument("--window", type=int, help="intervals measured in C (12; at most 19)")
    parser.add_argument("--rate", type=float, default=50.0, help="operations/s per integration")
    parser.add_argument("--only", default="ABC", help="scenarios to run, e.g. C or AB (ABC)")
    parser.add_argument("--timeout", type=float, default=600, help="deadline per wait")
    args = parser.parse_args(list(argv))
    quick = args.quick
    window = args.window or (4 if quick else 12)
    if window > 19:
        # healthHistory keeps 20 entries: the window's analyses plus the one before it.
        parser.error("--window must be at most 19 intervals")
    return Config(
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


def main(argv: Sequence[str] | None = None) -> int:
    # `python -m bench` calls main() for the full run; it must not read bench's own argv.
    return run(parse_config(argv if argv is not None else []))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
