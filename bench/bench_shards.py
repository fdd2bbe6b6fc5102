"""Takeover after SIGKILL: one peering for everything vs. one peering per shard.

Each run starts an active and a standby replica (kopf peering, `--peering-lifetime`)
per shard, cluster-wide, on a control plane of its own, with `--flags` FeatureFlags in
each of `--namespaces` namespaces. It SIGKILLs the active replica that serves shard
1 (the only one without shards), edits one flag in every namespace at once, and times
until each namespace's ConfigMap shows the edit, from the benchmark's side:

- `takeover`: the killed replica's namespaces, i.e. until its standby serves them;
- `others`: the namespaces of the shard that was not killed (sharded only).

Run: `python -m bench.bench_shards [--runs 3] [--namespaces 8] [--flags 50]`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from bench.common import control_plane_with_crds, machine_summary
from flagops.api.resources import GROUP, VERSION
from flagops.controller.shard import Shard, shard_of
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for


@dataclass
class Run:
    takeover: float
    others: float | None


def namespaces_for(count: int, shards: int, prefix: str) -> list[str]:
    """`count` namespace names spread equally over `shards`."""
    per = max(1, count // shards)
    chosen: dict[int, list[str]] = {i: [] for i in range(shards)}
    n = 0
    while any(len(v) < per for v in chosen.values()):
        name = f"{prefix}-{n}"
        n += 1
        if len(chosen[shard_of(name, shards)]) < per:
            chosen[shard_of(name, shards)].append(name)
    return sorted(name for names in chosen.values() for name in names)


def published(core: client.CoreV1Api, namespace: str, key: str) -> dict[str, Any] | None:
    try:
        cm = core.read_namespaced_config_map("feature-flags", namespace)
    except client.exceptions.ApiException:
        return None
    flags: dict[str, Any] = json.loads((cm.data or {}).get("flags.json", "{}")).get("flags", {})
    return flags.get(key)


def one_run(plane: ControlPlane, shards: int, args: argparse.Namespace, tag: str) -> Run:
    api = plane.api_client()
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    peering = f"bench-{uuid.uuid4().hex[:6]}"
    namespaces = namespaces_for(args.namespaces, shards, f"{tag}-{shards}")
    for ns in namespaces:
        plane.create_namespace(ns)
        for i in range(args.flags):
            body = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "FeatureFlag",
                "metadata": {"name": f"flag-{i}"},
                "spec": {"key": f"flag_{i}", "enabled": False, "rolloutPercent": 0},
            }
            custom.create_namespaced_custom_object(GROUP, VERSION, ns, "featureflags", body)
    operators: dict[tuple[int, str], OperatorProcess] = {}
    try:
        for index in range(shards):
            shard = Shard(index, shards)
            name = shard.peering_name(peering)
            body = {"apiVersion": "kopf.dev/v1", "kind": "ClusterKopfPeering"}
            custom.create_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings", {**body, "metadata": {"name": name}}
            )
            for role, priority in (("active", 200), ("standby", 100)):
                extra = ["--peering-lifetime", str(args.lifetime)]
                if shards > 1:
                    extra += ["--shard", str(shard)]
                operators[index, role] = OperatorProcess(
                    plane.kubeconfig,
                    [],
                    standalone=False,
                    peering=peering,
                    extra_args=extra,
                    extra_env={"FLAGOPS_PEERING_PRIORITY": str(priority)},
                    name=f"{tag}-{shards}-{index}-{role}",
                ).start()
        last = f"flag_{args.flags - 1}"
        wait_for(
            lambda: all(published(core, ns, last) for ns in namespaces),
            timeout=args.timeout,
            message="every namespace published",
        )
        killed = 1 if shards > 1 else 0
        victim = operators[killed, "active"]
        pid = victim.process.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed_at = time.perf_counter()
        for ns in namespaces:
            custom.patch_namespaced_custom_object(
                GROUP, VERSION, ns, "featureflags", "flag-0", {"spec": {"rolloutPercent": 7}}
            )

        def edited(ns: str) -> bool:
            flag = published(core, ns, "flag_0")
            return flag is not None and flag["rolloutPercent"] == 7

        done: dict[str, float] = {}

        def all_edited() -> bool:
            for ns in namespaces:
                if ns not in done and edited(ns):
                    done[ns] = time.perf_counter() - killed_at
            return len(done) == len(namespaces)

        wait_for(all_edited, timeout=args.timeout, interval=0.05, message="edits published")
        mine = [done[ns] for ns in namespaces if shards == 1 or shard_of(ns, shards) == killed]
        others = [done[ns] for ns in namespaces if shards > 1 and shard_of(ns, shards) != killed]
        return Run(takeover=max(mine), others=max(others) if others else None)
    finally:
        for operator in operators.values():
            operator.stop()
        # The next run's cluster-wide operators must not serve this run's namespaces too.
        for ns in namespaces:
            custom.delete_collection_namespaced_custom_object(GROUP, VERSION, ns, "featureflags")
        api.close()


def describe(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):5.2f} s  min {min(values):5.2f}  max {max(values):5.2f}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--namespaces", type=int, default=8)
    parser.add_argument("--flags", type=int, default=50, help="FeatureFlags per namespace")
    parser.add_argument("--lifetime", type=int, default=5, help="--peering-lifetime (s)")
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args(argv)
    print(f"machine: {machine_summary()}")
    print(
        f"{args.namespaces} namespaces x {args.flags} flags, cluster-wide, active + standby per"
        f" shard, --peering-lifetime {args.lifetime}; {args.runs} runs each"
    )
    results: dict[int, list[Run]] = {1: [], 2: []}
    with control_plane_with_crds() as plane:
        for run in range(args.runs):
            for shards in (1, 2):
                results[shards].append(one_run(plane, shards, args, f"r{run}"))
    print("SIGKILL of the active replica -> the killed replica's namespaces publish an edit:")
    print(f"  one peering (no shards):   {describe([r.takeover for r in results[1]])}")
    print(f"  2 shards, shard 1 killed:  {describe([r.takeover for r in results[2]])}")
    others = [r.others for r in results[2] if r.others is not None]
    print(f"  2 shards, shard 0 (alive): {describe(others)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
