"""Shared pieces of the operator benchmarks: control plane, ConfigMap watch, process probes.

Timing here is wall clock on the benchmark's side (`time.perf_counter`), i.e. what
a watching client sees, including the apiserver's watch fan-out.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from flagops.testing.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[1]
GROUP, VERSION = "flagops.dev", "v1alpha1"
CONFIGMAP = "feature-flags"
FLAGS_KEY = "flags.json"

FlagsDoc = dict[str, dict[str, Any]]


# -- control plane ------------------------------------------------------------------------


@contextlib.contextmanager
def control_plane_with_crds() -> Iterator[ControlPlane]:
    """etcd + kube-apiserver on loopback with the committed CRDs applied as a user would.

    No kube-controller-manager: nothing measured needs it, and it would take CPU
    from the two cores the figures are about.
    """
    with ControlPlane(controller_manager=False) as plane:
        plane.kubectl("apply", "--server-side", "--force-conflicts", "-k", str(REPO / "crds"))
        plane.kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/featureflags.flagops.dev",
            "crd/rollouts.flagops.dev",
        )
        yield plane


def machine_summary() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gib = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        first = Path("/proc/meminfo").read_text().splitlines()[0]
        mem_gib = int(first.split()[1]) / 1024 / 1024
    return f"{model}, {os.cpu_count()} cores, {mem_gib:.0f} GiB"


# -- the operator's process and metrics ---------------------------------------------------


@dataclass(frozen=True)
class ProcessSample:
    rss_kib: int
    peak_rss_kib: int
    cpu_seconds: float


def sample_process(pid: int) -> ProcessSample:
    """RSS (VmRSS, VmHWM) and user+system CPU time of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    values = {
        line.split(":", 1)[0]: line.split()[1]
        for line in status.splitlines()
        if line.startswith(("VmRSS:", "VmHWM:"))
    }
    # /proc/<pid>/stat: the command name may hold spaces, so split after its closing ')'.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ProcessSample(
        rss_kib=int(values["VmRSS"]),
        peak_rss_kib=int(values["VmHWM"]),
        cpu_seconds=ticks / os.sysconf("SC_CLK_TCK"),
    )


def counter_value(metrics_text: str, name: str, labels: Mapping[str, str]) -> float:
    """A counter's `_total` sample with the given labels (0 when not yet exported)."""
    for family in text_string_to_metric_families(metrics_text):
        if family.name != name.removesuffix("_total"):
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                return float(sample.value)
    return 0.0


def histogram_sum_count(
    metrics_text: str, name: str, labels: Mapping[str, str]
) -> tuple[float, float]:
    """A histogram's `_sum` and `_count` samples with the given labels ((0, 0) when absent)."""
    found = {"_sum": 0.0, "_count": 0.0}
    for family in text_string_to_metric_families(metrics_text):
        if family.name != name:
            continue
        for sample in family.samples:
            suffix = sample.name.removeprefix(name)
            if suffix in found and all(sample.labels.get(k) == v for k, v in labels.items()):
                found[suffix] = float(sample.value)
    return found["_sum"], found["_count"]


# -- watching the published document ------------------------------------------------------


@dataclass
class Observed:
    """One version of the ConfigMap as the watch delivered it."""

    at: float
    type: str
    resource_version: str
    flag_count: int
    flags: FlagsDoc | None = field(repr=False)


class ConfigMapWatch:
    """Records every version of a namespace's `feature-flags` ConfigMap with its arrival time.

    A list first fixes the starting resourceVersion, so no write after `start()`
    returns is missed even if the watch connection opens a moment later.
    """

    def __init__(self, api_client: Any, namespace: str, name: str = CONFIGMAP) -> None:
        from kubernetes import client, watch

        # The client is typed loosely (Optional everywhere); Any keeps that out of this code.
        self._core: Any = client.CoreV1Api(api_client)
        self._watch: Any = watch.Watch()  # type: ignore[no-untyped-call]
        self.namespace = namespace
        self._selector = f"metadata.name={name}"
        self.events: list[Observed] = []
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"cm-watch-{namespace}", daemon=True)
        self._resource_version = ""

    def start(self) -> ConfigMapWatch:
        listed = self._core.list_namespaced_config_map(
            self.namespace, field_selector=self._selector
        )
        self._resource_version = listed.metadata.resource_version
        self._thread.start()
        return self

    def stop(self) -> None:
        # Takes effect at the next event or when the control plane goes away (daemon thread).
        self._watch.stop()

    def _run(self) -> None:
        try:
            for event in self._watch.stream(
                self._core.list_namespaced_config_map,
                self.namespace,
                field_selector=self._selector,
                resource_version=self._resource_version,
            ):
                at = time.perf_counter()
                obj = event["object"]
                flags: FlagsDoc | None = None
                with contextlib.suppress(TypeError, ValueError, KeyError, AttributeError):
                    flags = json.loads((obj.data or {})[FLAGS_KEY])["flags"]
                observed = Observed(
                    at=at,
                    type=str(event["type"]),
                    resource_version=str(obj.metadata.resource_version),
                    flag_count=len(flags) if flags is not None else -1,
                    flags=flags,
                )
                with self._cond:
                    self.events.append(observed)
                    self._cond.notify_all()
        except Exception as exc:
            with self._cond:
                self.error = exc
                self._cond.notify_all()

    def mark(self) -> int:
        """An index into `events`: what arrives from now on has an index at least this."""
        with self._cond:
            return len(self.events)

    def writes_since(self, mark: int) -> int:
        """Versions delivered since `mark` (each ADDED/MODIFIED event is one write)."""
        with self._cond:
            return sum(1 for e in self.events[mark:] if e.type in ("ADDED", "MODIFIED"))

    def wait_until(
        self, predicate: Callable[[FlagsDoc], bool], since: int, timeout: float
    ) -> Observed:
        """The first version at or after index `since` whose flags satisfy `predicate`."""
        deadline = time.monotonic() + timeout
        checked = since
        with self._cond:
            while True:
                for event in self.events[checked:]:
                    if event.flags is not None and predicate(event.flags):
                        return event
                checked = len(self.events)
                if self.error is not None:
                    raise RuntimeError(f"ConfigMap watch failed: {self.error!r}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"ConfigMap {self.namespace}/{CONFIGMAP} never matched within {timeout:g}s"
                    )
                self._cond.wait(remaining)

    def forget_documents(self) -> None:
        """Drop parsed documents already looked at, so long runs stay small in memory."""
        with self._cond:
            for event in self.events[:-1]:
                event.flags = None


# -- figures ------------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: the figure is a latency that happened)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(pct / 100 * len(ordered))))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms),
        "mean": statistics.fmean(ms),
    }


@dataclass(frozen=True)
class Row:
    measure: str
    target: str
    measured: str
    verdict: str = ""  # PASS, MISS, or "" for figures reported without a target


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_table(rows: Sequence[Row]) -> None:
    headers = ("measure", "target", "measured", "result")
    cells = [(r.measure, r.target, r.measured, r.verdict or "-") for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("  ".join("-" * w for w in widths))
    for c in cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)))
