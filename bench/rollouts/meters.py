"""Counters read at the start and the end of a measured window, for the fleet scenario (D).

Every figure is a delta of a counter kept by the process that did the work: the
operator's own /metrics, the kube-apiserver's /metrics (`apiserver_request_total`,
read with the control plane's admin certificate), Prometheus's own request counter,
and user+system CPU time from /proc. Nothing is inferred from Rollout status, which
the operator no longer writes on every analysis.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from prometheus_client.parser import text_string_to_metric_families

from bench.common import sample_process
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.operator import OperatorProcess

LATENESS = "flagops_analysis_lateness_seconds"
QUERIES = "flagops_analysis_queries_total"
STATUS_WRITES = "flagops_rollout_status_writes_total"
ANALYSES = "flagops_analysis_total"
MODES = "flagops_analysis_rollouts"
TICK = "flagops_analysis_tick_seconds"
QUERY_KINDS = ("grouped", "catchup", "alone", "validate")
WRITE_REASONS = ("change", "heartbeat")
VERDICTS = ("Pass", "Fail", "Inconclusive", "Error")
# "On time": an analysis starts within this much of its due time on the grid.
ON_TIME_SECONDS = 1.0
# The verbs that write a Rollout's status subresource (merge patch, update, server-side apply).
STATUS_VERBS = frozenset({"PATCH", "UPDATE", "APPLY"})

T = TypeVar("T")


@dataclass(frozen=True)
class OperatorCounters:
    """What one operator process counted so far (0 for a metric it does not export)."""

    late_buckets: dict[float, float]  # lateness histogram: cumulative count by upper bound
    analyses_timed: float  # lateness histogram count
    queries: dict[str, float]  # by kind
    status_writes: dict[str, float]  # by reason
    analyses: dict[str, float]  # flagops_analysis_total by verdict
    modes: dict[str, float]  # gauge: Rollouts analysed grouped / alone
    query_seconds: dict[str, float]  # tick histogram sum by kind (seconds spent querying)

    def minus(self, before: OperatorCounters) -> OperatorCounters:
        return OperatorCounters(
            late_buckets=_minus(self.late_buckets, before.late_buckets),
            analyses_timed=self.analyses_timed - before.analyses_timed,
            queries=_minus(self.queries, before.queries),
            status_writes=_minus(self.status_writes, before.status_writes),
            analyses=_minus(self.analyses, before.analyses),
            modes=dict(self.modes),  # a gauge: the newer value, not a delta
            query_seconds=_minus(self.query_seconds, before.query_seconds),
        )

    @property
    def on_time(self) -> float:
        """Analyses that started at most ON_TIME_SECONDS after their due time."""
        return self.late_buckets.get(ON_TIME_SECONDS, 0.0)

    def late_share(self, bound: float) -> float:
        """Share of the analyses that started at most `bound` seconds late (a bucket bound)."""
        return (
            self.late_buckets.get(bound, 0.0) / self.analyses_timed if self.analyses_timed else 0.0
        )

    @property
    def late_p99_bound(self) -> float:
        """Upper bound of the bucket holding the 99th percentile of lateness (inf if past all)."""
        total = self.analyses_timed
        for le in sorted(self.late_buckets):
            if total and self.late_buckets[le] >= 0.99 * total:
                return le
        return float("nan")


def _minus(after: Mapping[T, float], before: Mapping[T, float]) -> dict[T, float]:
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def read_operator(operator: OperatorProcess) -> OperatorCounters:
    late: dict[float, float] = {}
    timed = 0.0
    queries = dict.fromkeys(QUERY_KINDS, 0.0)
    writes = dict.fromkeys(WRITE_REASONS, 0.0)
    analyses = dict.fromkeys(VERDICTS, 0.0)
    modes: dict[str, float] = {}
    query_seconds: dict[str, float] = {}
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == f"{LATENESS}_bucket":
                late[float(labels["le"])] = late.get(float(labels["le"]), 0.0) + sample.value
            elif sample.name == f"{LATENESS}_count":
                timed += sample.value
            elif sample.name == QUERIES:
                kind = labels.get("kind", "")
                queries[kind] = queries.get(kind, 0.0) + sample.value
            elif sample.name == STATUS_WRITES:
                reason = labels.get("reason", "")
                writes[reason] = writes.get(reason, 0.0) + sample.value
            elif sample.name == ANALYSES:
                verdict = labels.get("verdict", "")
                analyses[verdict] = analyses.get(verdict, 0.0) + sample.value
            elif sample.name == MODES:
                modes[labels.get("mode", "")] = sample.value
            elif sample.name == f"{TICK}_sum":
                kind = labels.get("kind", "")
                query_seconds[kind] = query_seconds.get(kind, 0.0) + sample.value
    return OperatorCounters(late, timed, queries, writes, analyses, modes, query_seconds)


# -- the apiserver's own count ------------------------------------------------------------


def apiserver_status_writes(plane: ControlPlane) -> float:
    """Rollout status writes the kube-apiserver has served, every code (its /metrics).

    Only the `apiserver_request_total` lines about rollouts are parsed: the whole
    exposition is megabytes of histograms.
    """
    text = plane.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("apiserver_request_total{") and 'resource="rollouts"' in line
    ]
    total = 0.0
    for family in text_string_to_metric_families("\n".join(lines) + "\n"):
        for sample in family.samples:
            labels = sample.labels
            if labels.get("subresource") == "status" and labels.get("verb") in STATUS_VERBS:
                total += sample.value
    return total


# -- CPU ----------------------------------------------------------------------------------


@dataclass
class CpuClock:
    """User+system CPU seconds of named processes between `start()` and `stop()`."""

    pids: dict[str, int]
    started: dict[str, float] = field(default_factory=dict)

    def _now(self) -> dict[str, float]:
        found: dict[str, float] = {}
        for name, pid in self.pids.items():
            with contextlib.suppress(OSError, KeyError, ValueError):
                found[name] = sample_process(pid).cpu_seconds
        return found

    def start(self) -> None:
        self.started = self._now()

    def stop(self) -> dict[str, float]:
        now = self._now()
        return {name: now[name] - self.started[name] for name in now if name in self.started}
