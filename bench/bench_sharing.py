"""Sharing across namespaces: does a shared copy keep up with the owner's own ConfigMap?

Namespace A holds N FeatureFlags, S of them shared with namespace B
(`spec.sharedWith`, docs/sharing.md). One real operator and one real relay run
against a local etcd + kube-apiserver. Each timed edit changes one shared flag;
we time, side by side, when the change is seen:

  - in A's own `feature-flags` ConfigMap (watch);
  - in B's copy `feature-flags-from-A` (watch);
  - by a relay client with a token for A, on A's document stream;
  - by a relay client with a token for B only, on A's document stream (served the copy).

    python -m bench.bench_sharing [--quick] [--flags 1000] [--shared 50] [--edits 100]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.common import (
    ConfigMapWatch,
    FlagsDoc,
    Row,
    apply_list,
    control_plane_with_crds,
    latency_summary,
    print_machine,
    print_table,
)
from flagops.api.resources import GROUP, VERSION
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.relay import RelayProcess, SseEvent, SseReader

PLURAL = "featureflags"
TOKEN_A = "bench-sharing-token-owner-0001"
TOKEN_B = "bench-sharing-token-reader-0001"


@dataclass(frozen=True)
class Config:
    flags: int = 1000
    shared: int = 50
    edits: int = 100
    gap: float = 0.3
    timeout: float = 300.0


@dataclass
class Timings:
    own: list[float] = field(default_factory=list)
    copy: list[float] = field(default_factory=list)
    relay_own: list[float] = field(default_factory=list)
    relay_shared: list[float] = field(default_factory=list)


def flag_body(namespace: str, i: int, shared_with: str | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"key": f"flag_{i:05d}", "enabled": True, "rolloutPercent": i % 101}
    if shared_with is not None:
        spec["sharedWith"] = [shared_with]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "FeatureFlag",
        "metadata": {"name": f"flag-{i:05d}", "namespace": namespace},
        "spec": spec,
    }


def stream_shows(key: str, value: int) -> Any:
    def match(event: SseEvent) -> bool:
        try:
            flags = event.json()["flags"]
        except (ValueError, KeyError, TypeError):
            return False
        return bool(flags.get(key, {}).get("rolloutPercent") == value)

    return match


def run(config: Config) -> int:
    timings = Timings()
    with control_plane_with_crds() as plane:
        print_machine(plane)
        from kubernetes import client

        api = plane.api_client()
        custom: Any = client.CustomObjectsApi(api)
        owner = plane.create_namespace("bench-sharing-owner")
        reader = plane.create_namespace("bench-sharing-reader")
        items = [
            flag_body(owner, i, reader if i < config.shared else None) for i in range(config.flags)
        ]
        apply_list(plane, items, config.timeout)
        operator = OperatorProcess(plane.kubeconfig, [owner, reader]).start(timeout=120)
        own = ConfigMapWatch(api, owner).start()
        copy = ConfigMapWatch(api, reader, name=f"feature-flags-from-{owner}").start()
        relay: RelayProcess | None = None
        readers: list[SseReader] = []
        try:
            print(f"publishing {config.flags} flags, {config.shared} shared ...", flush=True)
            own.wait_for_flags(lambda f: len(f) == config.flags, 0, config.timeout)
            copy.wait_for_flags(lambda f: len(f) == config.shared, 0, config.timeout)
            relay = RelayProcess(
                plane.kubeconfig,
                [owner, reader],
                tokens=[
                    {"name": "owner", "token": TOKEN_A, "namespaces": [owner]},
                    {"name": "reader", "token": TOKEN_B, "namespaces": [reader]},
                ],
            ).start(timeout=120)
            url = f"{relay.url}/namespaces/{owner}/v1/flags/stream"
            own_stream = SseReader(url, {"Authorization": f"Bearer {TOKEN_A}"}).start()
            shared_stream = SseReader(url, {"Authorization": f"Bearer {TOKEN_B}"}).start()
            readers += [own_stream, shared_stream]
            first = shared_stream.wait_event(timeout=config.timeout)
            if len(first.json()["flags"]) != config.shared:
                raise RuntimeError("the reader's token is not served the shared copy")
            percents = {i: i % 101 for i in range(config.shared)}
            print(f"{config.edits} edits of shared flags (one more to warm up) ...", flush=True)
            for k in range(config.edits + 1):
                i = (k * 7) % config.shared
                key, value = f"flag_{i:05d}", (percents[i] + 37) % 101

                def shows(flags: FlagsDoc, key: str = key, value: int = value) -> bool:
                    return flags.get(key, {}).get("rolloutPercent") == value

                marks = (own.mark(), copy.mark(), own_stream.mark(), shared_stream.mark())
                started = time.perf_counter()
                custom.patch_namespaced_custom_object(
                    GROUP,
                    VERSION,
                    owner,
                    PLURAL,
                    f"flag-{i:05d}",
                    {"spec": {"rolloutPercent": value}},
                )
                own_at = own.wait_for_flags(shows, marks[0], config.timeout).at
                copy_at = copy.wait_for_flags(shows, marks[1], config.timeout).at
                relay_own_at = own_stream.wait_event(
                    stream_shows(key, value), config.timeout, marks[2]
                ).at
                relay_shared_at = shared_stream.wait_event(
                    stream_shows(key, value), config.timeout, marks[3]
                ).at
                own.forget_documents()
                copy.forget_documents()
                percents[i] = value
                if k > 0:
                    timings.own.append(own_at - started)
                    timings.copy.append(copy_at - started)
                    timings.relay_own.append(relay_own_at - started)
                    timings.relay_shared.append(relay_shared_at - started)
                time.sleep(config.gap)
        finally:
            for stream in readers:
                stream.close()
            if relay is not None:
                relay.stop()
            own.stop()
            copy.stop()
            operator.stop()
            api.close()

    rows: list[Row] = []
    label = f"edit of a shared flag -> seen ({config.flags} flags, {config.shared} shared)"
    for name, values in (
        ("owner's ConfigMap (A/feature-flags)", timings.own),
        ("copy (B/feature-flags-from-A)", timings.copy),
        ("relay stream, token for A", timings.relay_own),
        ("relay stream, token for B only (the copy)", timings.relay_shared),
    ):
        s = latency_summary(values)
        rows.append(
            Row(
                f"{label}: {name}, p50 / p90 / p99 / max ({int(s['n'])} edits)",
                "",
                f"{s['p50']:.0f} / {s['p90']:.0f} / {s['p99']:.0f} / {s['max']:.0f} ms",
            )
        )
    print()
    print_table(rows)
    return 0


def parse_config(argv: Sequence[str]) -> Config:
    parser = argparse.ArgumentParser(
        prog="python -m bench.bench_sharing",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="small run: 100 flags, 20 edits")
    parser.add_argument("--flags", type=int, help="FeatureFlags in the owner namespace (1000)")
    parser.add_argument("--shared", type=int, help="of which shared with the reader (50)")
    parser.add_argument("--edits", type=int, help="edits timed (100)")
    parser.add_argument("--gap", type=float, default=0.3, help="seconds between edits")
    parser.add_argument("--timeout", type=float, default=300, help="deadline per wait")
    args = parser.parse_args(argv)
    base = Config(flags=100, shared=10, edits=20) if args.quick else Config()
    return Config(
        flags=args.flags or base.flags,
        shared=min(args.shared or base.shared, args.flags or base.flags),
        edits=args.edits or base.edits,
        gap=args.gap,
        timeout=args.timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_config(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
