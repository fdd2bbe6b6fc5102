"""Flag publishing on a real apiserver: edit latency, bulk writes, idle writes, RSS and CPU.

The operator runs as `flagops run` in a child process against a local etcd +
kube-apiserver. A watch on the namespace's `feature-flags` ConfigMap (in a
thread of this process) timestamps every published version of `flags.json`.

    python -m bench.bench_publish [--quick] [--flags 1000] [--edits 200] ...

Scenarios, in order:
  A. one `kubectl apply -f` of a List of N FeatureFlags -> ConfigMap writes and
     time until all N are published; then an idle spell (writes, CPU, RSS); then
     single-flag edits with N flags present, in three paces: lone edits (a gap of
     --gap after each is seen, so the publisher is idle when the next arrives),
     paced edits (--paced-gap, 0.5 s: shorter than the publisher's quiet time with
     N flags), and back to back (next edit as soon as the previous one is seen).
     Then the ConfigMap deleted, and hand-edited, --restores times each (after a
     quiet spell of --restore-quiet s, so each is a lone event) -> time until the
     watch sees the whole document again.
  B. N FeatureFlags created by concurrent API calls from several threads, fresh
     namespace and operator -> writes and time until all are published.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.common import (
    CONFIGMAP,
    ConfigMapWatch,
    FlagsDoc,
    ProcessSample,
    Row,
    apply_list,
    control_plane_with_crds,
    counter_value,
    histogram_sum_count,
    latency_summary,
    print_machine,
    print_table,
    sample_process,
    verdict,
)
from flagops.api.resources import GROUP, VERSION
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for

PLURAL = "featureflags"
WRITES_METRIC = "flagops_configmap_writes_total"
FLUSH_METRIC = "flagops_reconcile_seconds"

# Targets of issue 2.
EDIT_P50_MS = 50.0
EDIT_P99_MS = 250.0
BULK_MAX_WRITES = 10
IDLE_MAX_WRITES = 0


@dataclass(frozen=True)
class Config:
    flags: int
    edits: int
    burst_edits: int
    paced_gap_seconds: float
    idle_seconds: float
    gap_seconds: float
    threads: int
    timeout: float
    restores: int = 5
    restore_quiet_seconds: float = 2.5


@dataclass(frozen=True)
class BulkResult:
    how: str
    create_seconds: float
    publish_seconds: float
    status_seconds: float
    writes_metric: float
    writes_watch: int


@dataclass(frozen=True)
class EditResult:
    latencies: list[float]
    patch_seconds: list[float]
    writes_metric: float
    writes_watch: int
    flushes: float
    flush_seconds: float


@dataclass(frozen=True)
class IdleResult:
    seconds: float
    writes_metric: float
    writes_watch: int
    before: ProcessSample
    after: ProcessSample


def flag_name(i: int) -> str:
    return f"flag-{i:04d}"


def flag_body(namespace: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FeatureFlag",
        "metadata": {"name": flag_name(i), "namespace": namespace},
        "spec": {
            "enabled": i % 2 == 0,
            "rolloutPercent": i % 101,
            "allowedCohorts": ["all"] if i % 3 else ["beta", "internal"],
            "metadata": {"owner": f"team-{i % 7}"},
        },
    }


def initial_percent(i: int) -> int:
    return i % 101


class Bench:
    def __init__(self, plane: ControlPlane, config: Config) -> None:
        from kubernetes import client

        self.plane = plane
        self.config = config
        self.api = plane.api_client()
        self.custom: Any = client.CustomObjectsApi(self.api)
        self.names = [flag_name(i) for i in range(config.flags)]

    def close(self) -> None:
        self.api.close()

    def start_operator(self, namespace: str) -> OperatorProcess:
        return OperatorProcess(self.plane.kubeconfig, [namespace]).start(timeout=120)

    def writes(self, operator: OperatorProcess, namespace: str) -> float:
        return counter_value(operator.metrics(), WRITES_METRIC, {"namespace": namespace})

    def flush_time(self, operator: OperatorProcess) -> tuple[float, float]:
        """Total seconds and number of the publisher's flushes so far (its own histogram)."""
        return histogram_sum_count(operator.metrics(), FLUSH_METRIC, {"kind": "featureflags"})

    def all_reported(self, namespace: str) -> bool:
        """Every flag carries a Published=True condition: the operator has finished the bulk."""
        listed = self.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        items = listed["items"]
        return len(items) == self.config.flags and all(
            any(
                c.get("type") == "Published" and c.get("status") == "True"
                for c in (item.get("status") or {}).get("conditions") or []
            )
            for item in items
        )

    def bulk(
        self,
        how: str,
        operator: OperatorProcess,
        watch: ConfigMapWatch,
        create: Callable[[], None],
    ) -> BulkResult:
        namespace = watch.namespace
        mark = watch.mark()
        writes_before = self.writes(operator, namespace)
        expected = set(self.names)

        started = time.perf_counter()
        create()
        created = time.perf_counter()
        published = watch.wait_for_flags(
            lambda flags: set(flags) == expected, since=mark, timeout=self.config.timeout
        )
        wait_for(
            lambda: self.all_reported(namespace),
            timeout=self.config.timeout,
            interval=1.0,
            message=f"not every FeatureFlag in {namespace} reported Published",
        )
        reported = time.perf_counter()
        watch.forget_documents()
        return BulkResult(
            how=how,
            create_seconds=created - started,
            publish_seconds=published.at - started,
            status_seconds=reported - started,
            writes_metric=self.writes(operator, namespace) - writes_before,
            writes_watch=watch.writes_since(mark),
        )

    def kubectl_apply_list(self, namespace: str) -> None:
        items = [flag_body(namespace, i) for i in range(self.config.flags)]
        apply_list(self.plane, items, self.config.timeout)

    def threaded_creates(self, namespace: str) -> None:
        def create(i: int) -> None:
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, flag_body(namespace, i)
            )

        with ThreadPoolExecutor(self.config.threads) as pool:
            # list() re-raises the first failed create.
            list(pool.map(create, range(self.config.flags)))

    def idle(self, operator: OperatorProcess, watch: ConfigMapWatch) -> IdleResult:
        pid = operator.process.pid
        assert pid is not None
        namespace = watch.namespace
        mark = watch.mark()
        writes_before = self.writes(operator, namespace)
        before = sample_process(pid)
        started = time.perf_counter()
        # The idle spell is the quantity measured, not a wait for something to happen.
        time.sleep(self.config.idle_seconds)
        after = sample_process(pid)
        return IdleResult(
            seconds=time.perf_counter() - started,
            writes_metric=self.writes(operator, namespace) - writes_before,
            writes_watch=watch.writes_since(mark),
            before=before,
            after=after,
        )

    def edits(
        self,
        operator: OperatorProcess,
        watch: ConfigMapWatch,
        percents: dict[str, int],
        count: int,
        gap: float,
        offset: int,
    ) -> EditResult:
        """Patch one flag's rolloutPercent at a time; latency: patch call start -> watch sees it."""
        namespace = watch.namespace
        first_mark = watch.mark()
        writes_before = self.writes(operator, namespace)
        flush_sum, flush_count = self.flush_time(operator)
        latencies: list[float] = []
        patch_seconds: list[float] = []
        for k in range(count):
            # A stride coprime with the flag count visits flags all over the document.
            name = self.names[((offset + k) * 7919) % len(self.names)]
            value = (percents[name] + 37) % 101

            def shows_value(flags: FlagsDoc, name: str = name, value: int = value) -> bool:
                return flags.get(name, {}).get("rolloutPercent") == value

            mark = watch.mark()
            started = time.perf_counter()
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, {"spec": {"rolloutPercent": value}}
            )
            patch_seconds.append(time.perf_counter() - started)
            seen = watch.wait_for_flags(shows_value, since=mark, timeout=self.config.timeout)
            latencies.append(seen.at - started)
            percents[name] = value
            watch.forget_documents()
            if gap > 0:
                # Deliberate spacing so the next edit meets an idle publisher (lone-change path).
                time.sleep(gap)
        flush_sum_after, flush_count_after = self.flush_time(operator)
        return EditResult(
            latencies=latencies,
            patch_seconds=patch_seconds,
            writes_metric=self.writes(operator, namespace) - writes_before,
            writes_watch=watch.writes_since(first_mark),
            flushes=flush_count_after - flush_count,
            flush_seconds=flush_sum_after - flush_sum,
        )

    def restore(self, watch: ConfigMapWatch, how: str) -> list[float]:
        """Delete (`how` = "deleted") or hand-edit the ConfigMap; seconds until it is back."""
        from kubernetes import client

        core: Any = client.CoreV1Api(self.api)
        namespace = watch.namespace
        seconds: list[float] = []
        for _ in range(self.config.restores):
            # The quiet spell is part of the scenario: a lone event, not one paced as a burst.
            time.sleep(self.config.restore_quiet_seconds)
            mark = watch.mark()
            started = time.perf_counter()
            if how == "deleted":
                core.delete_namespaced_config_map(CONFIGMAP, namespace)
            else:
                core.patch_namespaced_config_map(
                    CONFIGMAP, namespace, {"data": {"flags.json": '{"hand": "edit"}'}}
                )
            seen = watch.wait_for_flags(
                lambda flags: len(flags) == self.config.flags,
                since=mark,
                timeout=self.config.timeout,
            )
            seconds.append(seen.at - started)
            watch.forget_documents()
        return seconds


def _restore_row(how: str, seconds: list[float], flags: int) -> Row:
    s = latency_summary(seconds)
    return Row(
        f"{how} ConfigMap -> restored, {flags} flags (p50 / max, {len(seconds)} times)",
        "<= 1000 ms",
        f"{s['p50']:.0f} / {s['max']:.0f} ms",
        verdict(s["max"] <= 1000.0),
    )


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def _latency_rows(label: str, result: EditResult, targets: bool) -> list[Row]:
    s = latency_summary(result.latencies)
    patch = latency_summary(result.patch_seconds)
    n = int(s["n"])
    rows = [
        Row(
            f"{label}: p50 ({n} edits)",
            f"<= {EDIT_P50_MS:.0f} ms" if targets else "",
            f"{s['p50']:.1f} ms",
            verdict(s["p50"] <= EDIT_P50_MS) if targets else "",
        ),
        Row(f"{label}: p90", "", f"{s['p90']:.1f} ms"),
        Row(
            f"{label}: p99",
            f"<= {EDIT_P99_MS:.0f} ms" if targets else "",
            f"{s['p99']:.1f} ms",
            verdict(s["p99"] <= EDIT_P99_MS) if targets else "",
        ),
        Row(f"{label}: max / mean", "", f"{s['max']:.1f} / {s['mean']:.1f} ms"),
        Row(
            f"{label}: of which the patch call (p50 / p99)",
            "",
            f"{patch['p50']:.1f} / {patch['p99']:.1f} ms",
        ),
        Row(
            f"{label}: ConfigMap writes (metric / watch)",
            "",
            f"{result.writes_metric:.0f} / {result.writes_watch} for {n} edits",
        ),
        Row(
            f"{label}: operator flushes, mean flush time",
            "",
            f"{result.flushes:.0f}, {1000 * result.flush_seconds / max(result.flushes, 1):.0f} ms",
        ),
    ]
    return rows


def _bulk_rows(result: BulkResult, flags: int) -> list[Row]:
    writes_ok = result.writes_metric <= BULK_MAX_WRITES and result.writes_watch <= BULK_MAX_WRITES
    return [
        Row(
            f"{flags} flags, {result.how}: ConfigMap writes (metric / watch)",
            f"<= {BULK_MAX_WRITES}",
            f"{result.writes_metric:.0f} / {result.writes_watch}",
            verdict(writes_ok),
        ),
        Row(
            f"{flags} flags, {result.how}: creates took / all published after",
            "",
            f"{result.create_seconds:.2f} s / {result.publish_seconds:.2f} s",
        ),
        Row(
            f"{flags} flags, {result.how}: every status Published after",
            "",
            f"{result.status_seconds:.1f} s",
        ),
    ]


def run(config: Config) -> int:
    rows: list[Row] = []
    with control_plane_with_crds() as plane:
        print_machine(plane)
        bench = Bench(plane, config)
        try:
            # -- A: kubectl apply of a List, idle spell, edits --------------------------------
            ns_a = plane.create_namespace("bench-publish-apply")
            operator = bench.start_operator(ns_a)
            watch = ConfigMapWatch(bench.api, ns_a).start()
            try:
                print(f"A: kubectl apply of {config.flags} flags ...", flush=True)
                applied = bench.bulk(
                    "one kubectl apply of a List",
                    operator,
                    watch,
                    lambda: bench.kubectl_apply_list(ns_a),
                )
                rows += _bulk_rows(applied, config.flags)

                print(f"A: idle {config.idle_seconds:g} s ...", flush=True)
                idle = bench.idle(operator, watch)
                idle_ok = (
                    idle.writes_metric <= IDLE_MAX_WRITES and idle.writes_watch <= IDLE_MAX_WRITES
                )
                rows.append(
                    Row(
                        f"idle {idle.seconds:.0f} s with {config.flags} flags: "
                        "writes (metric / watch)",
                        f"{IDLE_MAX_WRITES}",
                        f"{idle.writes_metric:.0f} / {idle.writes_watch}",
                        verdict(idle_ok),
                    )
                )
                cpu = idle.after.cpu_seconds - idle.before.cpu_seconds
                rows.append(
                    Row(
                        f"idle {idle.seconds:.0f} s: operator CPU",
                        "",
                        f"{cpu:.2f} s ({100 * cpu / idle.seconds:.1f}% of one core)",
                    )
                )
                rows.append(
                    Row(
                        f"operator RSS with {config.flags} flags (after bulk+idle; peak)",
                        "",
                        f"{_mib(idle.after.rss_kib)}; peak {_mib(idle.after.peak_rss_kib)}",
                    )
                )

                percents = {flag_name(i): initial_percent(i) for i in range(config.flags)}
                print(
                    f"A: {config.edits} lone edits (gap {config.gap_seconds:g} s) ...", flush=True
                )
                lone = bench.edits(
                    operator, watch, percents, config.edits, config.gap_seconds, offset=0
                )
                rows += _latency_rows(
                    f"edit -> ConfigMap, {config.flags} flags, lone", lone, targets=True
                )
                gap = config.paced_gap_seconds
                print(f"A: {config.burst_edits} edits, gap {gap:g} s ...", flush=True)
                paced = bench.edits(
                    operator, watch, percents, config.burst_edits, gap, offset=config.edits
                )
                rows += _latency_rows(
                    f"edit -> ConfigMap, {config.flags} flags, gap {gap:g} s", paced, targets=False
                )
                print(f"A: {config.burst_edits} edits back to back ...", flush=True)
                burst = bench.edits(
                    operator,
                    watch,
                    percents,
                    config.burst_edits,
                    0.0,
                    offset=config.edits + config.burst_edits,
                )
                rows += _latency_rows(
                    f"edit -> ConfigMap, {config.flags} flags, no gap", burst, targets=False
                )
                for how in ("deleted", "hand-edited"):
                    print(f"A: ConfigMap {how}, {config.restores} times ...", flush=True)
                    rows.append(_restore_row(how, bench.restore(watch, how), config.flags))
                pid = operator.process.pid
                assert pid is not None
                end = sample_process(pid)
                rows.append(
                    Row(
                        "operator RSS at the end of A (peak)",
                        "",
                        f"{_mib(end.rss_kib)} (peak {_mib(end.peak_rss_kib)})",
                    )
                )
            finally:
                watch.stop()
                operator.stop()

            # -- B: concurrent API creates ---------------------------------------------------
            ns_b = plane.create_namespace("bench-publish-threads")
            operator = bench.start_operator(ns_b)
            watch = ConfigMapWatch(bench.api, ns_b).start()
            try:
                print(f"B: {config.flags} creates from {config.threads} threads ...", flush=True)
                threaded = bench.bulk(
                    f"API creates from {config.threads} threads",
                    operator,
                    watch,
                    lambda: bench.threaded_creates(ns_b),
                )
                rows += _bulk_rows(threaded, config.flags)
            finally:
                watch.stop()
                operator.stop()
        finally:
            bench.close()
    print()
    print_table(rows)
    return 0


def parse_config(argv: Sequence[str]) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_publish",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick", action="store_true", help="small run: 100 flags, 30 edits, idle 10 s"
    )
    parser.add_argument("--flags", type=int, help="FeatureFlags in the namespace (1000)")
    parser.add_argument("--edits", type=int, help="lone edits timed (200)")
    parser.add_argument(
        "--burst-edits", type=int, help="edits timed at each of the two faster paces (50)"
    )
    parser.add_argument("--idle", type=float, help="idle spell in seconds (60)")
    parser.add_argument(
        "--gap",
        type=float,
        default=1.0,
        help="pause after each lone edit is seen; must exceed the publisher's quiet time "
        "(its own status and ConfigMap echoes keep it busy for ~0.3-0.5 s after a write)",
    )
    parser.add_argument(
        "--paced-gap", type=float, default=0.5, help="pause after each edit of the paced run"
    )
    parser.add_argument("--threads", type=int, default=8, help="creating threads in B")
    parser.add_argument("--restores", type=int, default=5, help="deletions and edits timed")
    parser.add_argument(
        "--restore-quiet",
        type=float,
        default=2.5,
        help="quiet spell before each deletion or edit; longer than the publisher's burst"
        " pacing (publish_max_interval, 2 s)",
    )
    parser.add_argument("--timeout", type=float, default=600, help="deadline per wait")
    args = parser.parse_args(list(argv))
    quick = args.quick
    return Config(
        flags=args.flags or (100 if quick else 1000),
        edits=args.edits or (30 if quick else 200),
        burst_edits=args.burst_edits or (10 if quick else 50),
        idle_seconds=args.idle if args.idle is not None else (10.0 if quick else 60.0),
        gap_seconds=args.gap,
        paced_gap_seconds=args.paced_gap,
        threads=args.threads,
        timeout=args.timeout,
        restores=args.restores,
        restore_quiet_seconds=args.restore_quiet,
    )


def main(argv: Sequence[str] | None = None) -> int:
    # `python -m bench` calls main() for the full run; it must not read bench's own argv.
    return run(parse_config(argv if argv is not None else []))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
