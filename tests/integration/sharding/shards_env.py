"""A control plane of the shard tests' own, with flags, Rollouts and sharded operators.

The operators run cluster-wide (as the chart installs them), so they get a control plane
nobody else uses: on the shared one they would act on other tests' namespaces.
"""

from __future__ import annotations

import json
import signal
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from flagops.controller.shard import Shard, shard_of
from flagops_devtools.testing import objects
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.objects import GROUP, VERSION
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.wait import wait_for

INTEGRATION = "calendar_sync"
FLAG = "calendar-sync"
REPO = Path(__file__).resolve().parents[3]
# Seconds a replica's peering record lives: a killed active replica's standby resumes
# after about this long.
PEERING_LIFETIME = 5


def as_dict(value: object) -> dict[str, Any]:
    assert isinstance(value, dict)
    return value


def namespaces_for(count: int, per_shard: int, prefix: str) -> list[str]:
    """Namespace names that give each of `count` shards exactly `per_shard` of them."""
    chosen: dict[int, list[str]] = {i: [] for i in range(count)}
    n = 0
    while any(len(names) < per_shard for names in chosen.values()):
        name = f"{prefix}-{n}"
        n += 1
        bucket = chosen[shard_of(name, count)]
        if len(bucket) < per_shard:
            bucket.append(name)
    return sorted(name for names in chosen.values() for name in names)


@dataclass
class ShardWorld:
    plane: ControlPlane
    prometheus: PrometheusServer
    peering: str = field(default_factory=lambda: f"flagops-{uuid.uuid4().hex[:6]}")
    operators: list[OperatorProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        api = self.plane.api_client()
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    # --- operators ----------------------------------------------------------------------

    def create_peering(self, shard: Shard) -> str:
        name = shard.peering_name(self.peering)
        body = {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": name},
        }
        self.custom.create_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", body)
        return name

    def peers(self, shard: Shard) -> dict[str, Any]:
        obj = as_dict(
            self.custom.get_cluster_custom_object(
                "kopf.dev", "v1", "clusterkopfpeerings", shard.peering_name(self.peering)
            )
        )
        found: dict[str, Any] = obj.get("status") or {}
        return found

    def operator(self, shard: Shard | None, priority: int, name: str) -> OperatorProcess:
        """A cluster-wide replica of `shard` (None: no --shard) in its shard's peering."""
        args = ["--peering-lifetime", str(PEERING_LIFETIME)]
        if shard is not None:
            args += ["--shard", str(shard)]
        operator = OperatorProcess(
            self.plane.kubeconfig,
            [],
            prometheus_address=self.prometheus.url,
            standalone=False,
            peering=self.peering,
            extra_args=args,
            extra_env={"FLAGOPS_PEERING_PRIORITY": str(priority)},
            name=name,
        )
        self.operators.append(operator)
        return operator.start()

    def stop_all(self) -> None:
        for operator in self.operators:
            operator.stop()

    @staticmethod
    def terminate(operator: OperatorProcess) -> None:
        """SIGTERM and wait: kopf stops its daemons and leaves the peering, as in a Pod."""
        pid = operator.process.pid
        if pid is not None and operator.process.running():
            import os

            os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not operator.process.running(), timeout=30, message="operator exit")

    # --- objects ------------------------------------------------------------------------

    def create_namespace(self, name: str) -> None:
        self.plane.create_namespace(name)

    def create_flag(self, namespace: str, **spec: Any) -> None:
        objects.create_flag(
            self.custom, namespace, FLAG, key="calendar_sync", integration=INTEGRATION, **spec
        )

    def patch_flag(self, namespace: str, **spec: Any) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "featureflags", FLAG, {"spec": spec}
        )

    def create_rollout(self, namespace: str, stage_duration: str = "3s") -> None:
        objects.create_rollout(
            self.custom,
            namespace,
            FLAG,
            stageDuration=stage_duration,
            analysis={"interval": "1s", "minSampleSize": 20},
        )

    def rollout(self, namespace: str) -> dict[str, Any]:
        return as_dict(
            self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "rollouts", FLAG)
        )

    def status(self, namespace: str) -> dict[str, Any]:
        status: dict[str, Any] = self.rollout(namespace).get("status") or {}
        return status

    def start_shards(self, shards: list[Shard]) -> list[OperatorProcess]:
        """One operator per shard, each with its shard's peering object, named shard-<index>."""
        operators = []
        for shard in shards:
            self.create_peering(shard)
            operators.append(self.operator(shard, priority=100, name=f"shard-{shard.index}"))
        return operators

    def hold_at_internal(self, namespaces: list[str]) -> None:
        """Each namespace with a disabled flag whose hour-long Rollout waits at INTERNAL."""
        for ns in namespaces:
            self.create_namespace(ns)
            self.create_flag(ns, enabled=False)
            self.create_rollout(ns, stage_duration="1h")
        self.wait_all(namespaces, lambda s: s.get("stage") == "INTERNAL", timeout=90)

    def wait_all(
        self, namespaces: list[str], check: Callable[[dict[str, Any]], Any], timeout: float
    ) -> None:
        def ready() -> bool:
            return all(check(self.status(ns)) for ns in namespaces)

        try:
            wait_for(ready, timeout=timeout, message=f"Rollouts of {namespaces}")
        except TimeoutError as exc:
            seen = {ns: self.status(ns).get("stage") for ns in namespaces}
            raise TimeoutError(f"{exc}; stages: {seen}") from None

    def published(self, namespace: str) -> dict[str, Any] | None:
        try:
            cm = self.core.read_namespaced_config_map("feature-flags", namespace)
        except client.exceptions.ApiException:
            return None
        flags: dict[str, Any] = json.loads((cm.data or {})["flags.json"])["flags"]
        return flags.get("calendar_sync")

    def writers(self, obj: dict[str, Any], subresource: str | None = None) -> set[str]:
        """Field managers that wrote `obj` (optionally only through a subresource)."""
        entries = obj["metadata"].get("managedFields") or []
        return {
            e["manager"]
            for e in entries
            if subresource is None or e.get("subresource") == subresource
        }

    def configmap_writers(self, namespace: str) -> set[str]:
        cm = self.core.read_namespaced_config_map("feature-flags", namespace)
        return self.writers(self.core.api_client.sanitize_for_serialization(cm))

    def stage_steps(self, namespace: str) -> list[tuple[str, str]]:
        """(from, to) of every StageAdvanced Event on the Rollout, oldest first."""
        items = self.core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={FLAG},involvedObject.kind=Rollout"
        ).items
        steps = []
        for event in sorted(items, key=lambda e: (e.first_timestamp, e.metadata.name)):
            if event.reason == "StageAdvanced" and event.message:
                head = event.message.split(":")[0].split(" by ")[0]
                old, new = (part.strip() for part in head.split("->"))
                steps.append((old, new))
        return steps


def metric_sum(operator: OperatorProcess, name: str, **labels: str) -> float:
    total = 0.0
    wanted = [f'{k}="{v}"' for k, v in labels.items()]
    for line in operator.metrics().splitlines():
        if (line.startswith(name + "{") or line.startswith(name + " ")) and all(
            w in line for w in wanted
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def served_namespaces(operator: OperatorProcess) -> set[str]:
    """Namespaces with a Rollout in this process's flagops_rollout_info."""
    found = set()
    for line in operator.metrics().splitlines():
        if line.startswith("flagops_rollout_info{") and line.rsplit(" ", 1)[1] != "0.0":
            labels = line[line.index("{") + 1 : line.index("}")]
            for part in labels.split(","):
                key, _, value = part.partition("=")
                if key == "namespace":
                    found.add(value.strip('"'))
    return found
