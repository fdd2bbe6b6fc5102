"""Shared pieces of the operator benchmarks: control plane, ConfigMap watch, process probes.

Timing here is wall clock on the benchmark's side (`time.perf_counter`), i.e. what
a watching client sees, including the apiserver's watch fan-out.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from prometheus_client.parser import text_string_to_metric_families

from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.crds import apply_crds

REPO = Path(__file__).resolve().parents[1]
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
        yield apply_crds(plane, REPO / "crds")


def print_machine(plane: ControlPlane, extra: str = "") -> None:
    """The line every bench starts with: machine, Python and control-plane binaries."""
    print(
        f"machine: {machine_summary()}; Python {platform.python_version()}; "
        f"control plane binaries {plane.bin_dir.name}{extra}",
        flush=True,
    )


def apply_list(plane: ControlPlane, items: Sequence[Mapping[str, Any]], timeout: float) -> None:
    """Many objects in one `kubectl apply` (a v1 List), as a user applying a folder would."""
    listing = json.dumps({"apiVersion": "v1", "kind": "List", "items": list(items)})
    plane.kubectl("apply", "-f", "-", input=listing, timeout=timeout)


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


T = TypeVar("T")


class WatchLog(Generic[T]):
    """Every event of one watch with its arrival time, in a thread; waits with deadlines.

    A list first fixes the starting resourceVersion, so no change after `start()`
    returns is missed even if the watch connection opens a moment later.
    """

    def __init__(
        self,
        label: str,
        list_call: Callable[..., Any],
        list_args: tuple[Any, ...],
        list_kwargs: Mapping[str, Any],
        convert: Callable[[str, Any, float], T],
    ) -> None:
        from kubernetes import watch

        self._watch: Any = watch.Watch()  # type: ignore[no-untyped-call]
        self._label = label
        self._list_call = list_call
        self._list_args = list_args
        self._list_kwargs = dict(list_kwargs)
        self._convert = convert
        self.events: list[T] = []
        self.error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"watch-{label}", daemon=True)
        self._resource_version = ""

    def start(self) -> Self:
        listed = self._list_call(*self._list_args, **self._list_kwargs)
        metadata = listed["metadata"] if isinstance(listed, dict) else listed.metadata
        self._resource_version = (
            metadata["resourceVersion"] if isinstance(metadata, dict) else metadata.resource_version
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        # Takes effect at the next event or when the control plane goes away (daemon thread).
        self._watch.stop()

    def _run(self) -> None:
        try:
            for event in self._watch.stream(
                self._list_call,
                *self._list_args,
                resource_version=self._resource_version,
                timeout_seconds=3600,
                **self._list_kwargs,
            ):
                item = self._convert(str(event["type"]), event["object"], time.perf_counter())
                with self._cond:
                    self.events.append(item)
                    self._cond.notify_all()
        except Exception as exc:
            with self._cond:
                self.error = exc
                self._cond.notify_all()

    def mark(self) -> int:
        """An index into `events`: what arrives from now on has an index at least this."""
        with self._cond:
            return len(self.events)

    def since(self, mark: int) -> list[T]:
        with self._cond:
            return list(self.events[mark:])

    def wait_until(self, predicate: Callable[[T], bool], since: int, timeout: float) -> T:
        """The first event at or after index `since` that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        checked = since
        with self._cond:
            while True:
                for item in self.events[checked:]:
                    if predicate(item):
                        return item
                checked = len(self.events)
                if self.error is not None:
                    raise RuntimeError(f"{self._label} watch failed: {self.error!r}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{self._label} never matched within {timeout:g}s")
                self._cond.wait(remaining)


def _observed(type_: str, obj: Any, at: float) -> Observed:
    flags: FlagsDoc | None = None
    with contextlib.suppress(TypeError, ValueError, KeyError, AttributeError):
        flags = json.loads((obj.data or {})[FLAGS_KEY])["flags"]
    return Observed(
        at=at,
        type=type_,
        resource_version=str(obj.metadata.resource_version),
        flag_count=len(flags) if flags is not None else -1,
        flags=flags,
    )


class ConfigMapWatch(WatchLog[Observed]):
    """Every version of a namespace's `feature-flags` ConfigMap with its arrival time."""

    def __init__(self, api_client: Any, namespace: str, name: str = CONFIGMAP) -> None:
        from kubernetes import client

        # The client is typed loosely (Optional everywhere); Any keeps that out of this code.
        core: Any = client.CoreV1Api(api_client)
        self.namespace = namespace
        super().__init__(
            f"ConfigMap {namespace}/{name}",
            core.list_namespaced_config_map,
            (namespace,),
            {"field_selector": f"metadata.name={name}"},
            _observed,
        )

    def writes_since(self, mark: int) -> int:
        """Versions delivered since `mark` (each ADDED/MODIFIED event is one write)."""
        return sum(1 for e in self.since(mark) if e.type in ("ADDED", "MODIFIED"))

    def wait_for_flags(
        self, predicate: Callable[[FlagsDoc], bool], since: int, timeout: float
    ) -> Observed:
        """The first version at or after index `since` whose flags satisfy `predicate`."""
        return self.wait_until(lambda e: e.flags is not None and predicate(e.flags), since, timeout)

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
