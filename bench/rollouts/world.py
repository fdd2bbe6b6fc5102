"""What the rollout scenarios share: config, the world they run in, watches, samplers, units."""

from __future__ import annotations

import contextlib
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.common import (
    FlagsDoc,
    WatchLog,
    sample_process,
)
from flagops.api.resources import GROUP, VERSION
from flagops_devtools.testing import objects
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.prometheus import PrometheusServer

ROLLOUTS = "rollouts"
INTEGRATIONS = ("calendar_sync", "push_notifications", "shopping_list_sync", "export_pdf")
STAGES = ("DISABLED", "INTERNAL", "BETA", "EARLY_ACCESS", "LIMITED", "GENERAL", "FULL")
PROM_QUERY_HANDLER = "/api/v1/query"

# Targets of issue 3.
ACTION_P50_MS = 300.0
STAGE_PUBLISH_MAX_MS = 1000.0
SCALE_RSS_MIB = 200.0


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


def answers(action_id: str) -> Callable[[RolloutSeen], bool]:
    return lambda seen: seen.action_id == action_id


def at_stage(name: str, stage: str) -> Callable[[RolloutSeen], bool]:
    return lambda seen: seen.name == name and seen.stage == stage


def deleted(name: str) -> Callable[[RolloutSeen], bool]:
    return lambda seen: seen.name == name and seen.type == "DELETED"


def publishes(key: str, stage: str) -> Callable[[FlagsDoc], bool]:
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

    def operator(self, namespace: str, extra_env: dict[str, str] | None = None) -> OperatorProcess:
        return OperatorProcess(
            self.plane.kubeconfig,
            [namespace],
            prometheus_address=self.prometheus.url,
            extra_env=extra_env,
        ).start(timeout=120)

    def create_flag(self, namespace: str, name: str, integration: str, **spec: Any) -> None:
        key = name.replace("-", "_")
        objects.create_flag(self.custom, namespace, name, key=key, integration=integration, **spec)

    def create_rollout(
        self, namespace: str, name: str, stage_duration: str, interval: str, min_samples: int = 20
    ) -> None:
        objects.create_rollout(
            self.custom,
            namespace,
            name,
            stageDuration=stage_duration,
            analysis={"interval": interval, "minSampleSize": min_samples},
        )

    def rollouts(self, namespace: str) -> list[dict[str, Any]]:
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, ROLLOUTS)
        items: list[dict[str, Any]] = listed["items"]
        return items

    def prometheus_queries(self) -> float:
        return prometheus_query_count(self.prometheus)


def prometheus_query_count(prometheus: PrometheusServer) -> float:
    """Instant queries Prometheus itself has answered, all status codes (its own /metrics)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"{prometheus.url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "prometheus_http_requests"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("handler") == PROM_QUERY_HANDLER
    )


def status_of(obj: dict[str, Any]) -> dict[str, Any]:
    status: dict[str, Any] = obj.get("status") or {}
    return status


def passing(status: dict[str, Any]) -> bool:
    return (
        status.get("phase") == "Progressing"
        and (status.get("lastAnalysis") or {}).get("verdict") == "Pass"
    )


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def fmt_mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


def fmt2(s: dict[str, float]) -> str:
    return f"{s['p50']:.1f} / {s['p99']:.1f} ms"


def fmt3(s: dict[str, float]) -> str:
    return f"{s['p90']:.1f} / {s['p99']:.1f} / {s['max']:.1f} ms"
