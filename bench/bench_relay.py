"""The relay: OFREP throughput, 304 revalidation, idle streams, edit -> event latency.

    python -m bench.bench_relay [--quick] [--seconds 10] [--users 10000] ...

The relay runs as a real `flagops relay` child process pinned to core 0 (taskset)
against a local etcd + kube-apiserver; load comes from wrk (Debian package) and
from the benchmark's own processes on core 1. Scenarios, in order:

  A. OFREP bulk evaluation of 350 flags (every one a partial percentage, so every
     flag is hashed per request): wrk, 32 connections, 10,000 distinct users.
     Beside it, Unleash Edge (offline mode, 350 flexibleRollout toggles, one
     worker on core 0, its /api/frontend) when an `unleash-edge` binary is on PATH.
  B. 304 revalidation: the same requests with each user's ETag in If-None-Match.
  C. Flag edit -> event at a stream client, with 1,000 flags published by the real
     operator: a FeatureFlag patch, then the document stream's event showing the
     new value, and the OFREP stream's notice of that revision.
  D. 10,000 idle OFREP event-stream clients (one process on core 1): relay RSS,
     then one ConfigMap change: how many clients got the notice, and how fast.
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_publish import flag_body, flag_name
from bench.common import (
    ConfigMapWatch,
    FlagsDoc,
    Row,
    apply_list,
    control_plane_with_crds,
    latency_summary,
    machine_summary,
    print_table,
    sample_process,
    verdict,
)
from bench.relay_load import (
    EdgeProcess,
    WrkResult,
    edge_binary,
    edge_frontend_script,
    have_wrk,
    ofrep_bulk_script,
    revalidation_script,
    run_wrk,
)
from flagops.api.resources import GROUP, VERSION
from flagops.flags.document import build_document
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.relay import RelayProcess, SseEvent, SseReader
from flagops_devtools.testing.wait import wait_for

TOKEN = "bench-relay-token-0123456789"
BULK_PATH = "/ofrep/v1/evaluate/flags"
# Targets of issue 13.
BULK_RPS, BULK_P95_MS = 5000.0, 10.0
REVALIDATE_RPS = 15000.0
SSE_RSS_MIB = 300.0
EDIT_P50_MS, EDIT_P99_MS = 100.0, 300.0


@dataclass(frozen=True)
class Config:
    bulk_flags: int
    users: int
    seconds: float
    connections: int
    edit_flags: int
    edits: int
    gap_seconds: float
    sse_clients: int
    timeout: float


def percent_flags(count: int) -> dict[str, dict[str, Any]]:
    """Every flag enabled at a partial percentage, as flexibleRollout toggles are."""
    return {
        flag_name(i): {"enabled": True, "rolloutPercent": 1 + (i * 7) % 98, "stage": "BETA"}
        for i in range(count)
    }


def write_document(core: Any, namespace: str, flags: dict[str, dict[str, Any]]) -> str:
    from kubernetes import client

    text, revision = build_document(flags)
    body = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(
            name="feature-flags", labels={"app.kubernetes.io/managed-by": "flagops"}
        ),
        data={"flags.json": text},
    )
    try:
        core.replace_namespaced_config_map("feature-flags", namespace, body)
    except client.exceptions.ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespaced_config_map(namespace, body)
    return revision


def user_etags(port: int, path: str, users: int) -> list[tuple[str, str]]:
    """(body, ETag) of each user's bulk evaluation, over one keep-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    pairs = []
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for i in range(1, users + 1):
        body = json.dumps({"context": {"targetingKey": f"user-{i}"}}, separators=(",", ":"))
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        response.read()
        assert response.status == 200, response.status
        pairs.append((body, response.getheader("etag") or ""))
    connection.close()
    return pairs


def throughput_rows(relay: RelayProcess, namespace: str, config: Config, work: Path) -> list[Row]:
    rows: list[Row] = []
    # The bench token reads two namespaces, so every URL names one.
    path = f"/namespaces/{namespace}{BULK_PATH}"
    url = relay.url + path
    bulk_script = ofrep_bulk_script(TOKEN, config.users)
    run_wrk(url, bulk_script, 2, config.connections)  # warm-up: plans, caches, connections
    bulk = run_wrk(url, bulk_script, config.seconds, config.connections)
    rows.append(
        Row(
            f"A. OFREP bulk, {config.bulk_flags} flags, {config.users:,} users, relay",
            f">= {BULK_RPS:,.0f} req/s, p95 <= {BULK_P95_MS:.0f} ms",
            bulk.describe(),
            verdict(bulk.rps >= BULK_RPS and bulk.p95_ms <= BULK_P95_MS and not bulk.errors),
        )
    )
    rows.append(edge_row(config, work))
    pairs = user_etags(relay.port, path, config.users)
    revalidate = run_wrk(url, revalidation_script(TOKEN, pairs), config.seconds, config.connections)
    rows.append(
        Row(
            f"B. 304 revalidation, {config.users:,} users' ETags",
            f">= {REVALIDATE_RPS:,.0f} req/s",
            revalidate.describe(),
            verdict(revalidate.rps >= REVALIDATE_RPS and not revalidate.errors),
        )
    )
    return rows


def edge_row(config: Config, work: Path) -> Row:
    label = f"A. Unleash Edge /api/frontend, {config.bulk_flags} toggles, {config.users:,} users"
    binary = edge_binary()
    if binary is None:
        return Row(label, "(side by side)", "skipped: no unleash-edge on PATH")
    edge = EdgeProcess(binary, config.bulk_flags, work).start()
    try:
        script = edge_frontend_script(EdgeProcess.TOKEN, config.users)
        run_wrk(edge.url + "/api/frontend", script, 2, config.connections)
        result: WrkResult = run_wrk(
            edge.url + "/api/frontend", script, config.seconds, config.connections
        )
    finally:
        edge.stop()
    return Row(f"{label} ({edge.version})", "(side by side)", result.describe())


def edit_rows(
    plane: ControlPlane, relay: RelayProcess, namespace: str, config: Config
) -> list[Row]:
    from kubernetes import client

    api = plane.api_client()
    custom: Any = client.CustomObjectsApi(api)
    watch = ConfigMapWatch(api, namespace).start()
    operator = OperatorProcess(plane.kubeconfig, [namespace]).start(timeout=120)
    try:
        items = [flag_body(namespace, i) for i in range(config.edit_flags)]
        apply_list(plane, items, config.timeout)
        names = [flag_name(i) for i in range(config.edit_flags)]
        watch.wait_for_flags(lambda f: len(f) == config.edit_flags, 0, config.timeout)
        watch.forget_documents()
        wait_for(
            lambda: all_published(custom, namespace, config.edit_flags),
            timeout=config.timeout,
            interval=1.0,
            message="every FeatureFlag Published",
        )
        # A deliberate quiet spell longer than the publisher's 2 s burst ceiling, so the
        # edits meet it idle (lone changes, as bench_publish measures them).
        time.sleep(3)
        auth = {"Authorization": f"Bearer {TOKEN}"}
        base = f"{relay.url}/namespaces/{namespace}"
        documents = SseReader(base + "/v1/flags/stream", auth).start()
        notices = SseReader(base + "/ofrep/v1/events", auth).start()
        documents.wait_event(
            lambda e: len(json.loads(e.data)["flags"]) == config.edit_flags, timeout=config.timeout
        )
        to_configmap: list[float] = []
        to_document: list[float] = []
        to_notice: list[float] = []
        percents = {item["metadata"]["name"]: item["spec"]["rolloutPercent"] for item in items}
        for k in range(config.edits):
            name = names[(k * 7919) % len(names)]
            value = (percents[name] + 37) % 101
            marks = watch.mark(), documents.mark(), notices.mark()
            started = time.perf_counter()
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, namespace, "featureflags", name, {"spec": {"rolloutPercent": value}}
            )

            def published(flags: FlagsDoc, n: str = name, v: int = value) -> bool:
                return bool(flags.get(n, {}).get("rolloutPercent") == v)

            def streamed(event: SseEvent, n: str = name, v: int = value) -> bool:
                return bool(json.loads(event.data)["flags"][n]["rolloutPercent"] == v)

            seen = watch.wait_for_flags(published, marks[0], config.timeout)
            document = documents.wait_event(streamed, config.timeout, marks[1])

            def notified(event: SseEvent, revision: str | None = document.id) -> bool:
                return event.id == revision

            notice = notices.wait_event(notified, config.timeout, marks[2])
            to_configmap.append(seen.at - started)
            to_document.append(document.at - started)
            to_notice.append(notice.at - started)
            percents[name] = value
            watch.forget_documents()
            # Deliberate spacing: each edit meets an idle operator and relay (a lone change).
            time.sleep(config.gap_seconds)
        documents.close()
        notices.close()
    finally:
        operator.stop()
        watch.stop()
        api.close()
    rows = []
    for label, values, target in (
        ("edit -> ConfigMap (operator; for reference)", to_configmap, False),
        ("edit -> OFREP refetchEvaluation at a client", to_notice, True),
        ("edit -> whole document at a stream client", to_document, True),
    ):
        s = latency_summary(values)
        rows.append(
            Row(
                f"C. {label}, {config.edit_flags:,} flags, n={s['n']:.0f}",
                f"p50 <= {EDIT_P50_MS:.0f} ms, p99 <= {EDIT_P99_MS:.0f} ms" if target else "-",
                f"p50 {s['p50']:.0f} ms, p90 {s['p90']:.0f} ms, p99 {s['p99']:.0f} ms, "
                f"max {s['max']:.0f} ms",
                verdict(s["p50"] <= EDIT_P50_MS and s["p99"] <= EDIT_P99_MS) if target else "",
            )
        )
    return rows


def all_published(custom: Any, namespace: str, count: int) -> bool:
    items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "featureflags")["items"]
    return len(items) == count and all(
        any(
            c.get("type") == "Published" and c.get("status") == "True"
            for c in (item.get("status") or {}).get("conditions") or []
        )
        for item in items
    )


def idle_stream_rows(core: Any, relay: RelayProcess, namespace: str, config: Config) -> list[Row]:
    pid = relay.process.pid
    assert pid is not None
    before = sample_process(pid)
    argv = [
        "taskset",
        "-c",
        "1",
        sys.executable,
        "-m",
        "bench.relay_sse_clients",
        "--url",
        f"{relay.url}/namespaces/{namespace}/ofrep/v1/events",
        "--token",
        TOKEN,
        "--clients",
        str(config.sse_clients),
        "--timeout",
        "60",
    ]
    clients = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1]
    )
    assert clients.stdout is not None
    connected = json.loads(clients.stdout.readline())
    held = sample_process(pid)
    changed_at = time.monotonic()
    write_document(core, namespace, percent_flags(config.bulk_flags - 1))
    summary = json.loads(clients.stdout.readline())
    clients.wait(timeout=30)
    after = sample_process(pid)
    rss_mib = max(held.rss_kib, after.rss_kib) / 1024
    missed = config.sse_clients - int(summary["received"])
    spread = (
        f"first {1000 * (summary['first'] - changed_at):.0f} ms, "
        f"last {1000 * (summary['last'] - changed_at):.0f} ms after the ConfigMap write"
        if summary["received"]
        else "none received"
    )
    return [
        Row(
            f"D. {config.sse_clients:,} idle OFREP streams: relay RSS",
            f"<= {SSE_RSS_MIB:.0f} MB",
            f"{rss_mib:.0f} MiB (before {before.rss_kib / 1024:.0f} MiB, peak "
            f"{after.peak_rss_kib / 1024:.0f} MiB; opened in {connected['seconds']:.1f} s)",
            verdict(rss_mib <= SSE_RSS_MIB),
        ),
        Row(
            "D. one change -> notice at every idle stream",
            "no missed event",
            f"{summary['received']:,} of {config.sse_clients:,} ({spread})",
            verdict(missed == 0),
        ),
    ]


def run(config: Config) -> int:
    print(f"machine: {machine_summary()}")
    if not have_wrk():
        print("wrk or taskset not found: `hack/setup-system.sh --bench` installs wrk (Debian)")
        return 1
    # 10,000 streams need 10,000 descriptors here (the relay inherits the limit).
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    work = Path(tempfile.mkdtemp(prefix="bench-relay-"))
    rows: list[Row] = []
    with control_plane_with_crds() as plane:
        from kubernetes import client

        api = plane.api_client()
        core: Any = client.CoreV1Api(api)
        bulk_ns, edit_ns = plane.create_namespace(), plane.create_namespace()
        write_document(core, bulk_ns, percent_flags(config.bulk_flags))
        token = {
            "name": "bench",
            "token": TOKEN,
            "namespaces": [bulk_ns, edit_ns],
            "requestsPerSecond": 1e9,
            "burst": 10**9,
            "maxStreams": config.sse_clients + 100,
        }
        relay = RelayProcess(
            plane.kubeconfig, [bulk_ns, edit_ns], tokens=[token], taskset_cpu=0, log_dir=work
        )
        with relay:
            wait_for(lambda: relay.health()[1].get("namespaces", 0) >= 1, timeout=30)
            rows += throughput_rows(relay, bulk_ns, config, work)
            rows += edit_rows(plane, relay, edit_ns, config)
            rows += idle_stream_rows(core, relay, bulk_ns, config)
        api.close()
    print()
    print_table(rows)
    print(f"(relay log: {relay.log_path})")
    return 0


def parse_config(argv: Sequence[str]) -> Config:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_relay", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, fewer edits and streams")
    parser.add_argument("--bulk-flags", type=int, default=350)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0, help="each wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--edit-flags", type=int, default=1000)
    parser.add_argument("--edits", type=int, default=100)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between edits")
    parser.add_argument("--sse-clients", type=int, default=10_000)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.edits, args.sse_clients, args.users = 3.0, 20, 2000, 2000
    return Config(
        bulk_flags=args.bulk_flags,
        users=args.users,
        seconds=args.seconds,
        connections=args.connections,
        edit_flags=args.edit_flags,
        edits=args.edits,
        gap_seconds=args.gap,
        sse_clients=args.sse_clients,
        timeout=args.timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    # `python -m bench` calls main() for the full run; it must not read bench's own argv.
    return run(parse_config(argv if argv is not None else []))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
