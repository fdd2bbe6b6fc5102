"""Fixtures for the rollout controller: the operator, a real Prometheus, controlled traffic."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from flagops.testing.controlplane import ControlPlane
from flagops.testing.operator import OperatorProcess
from flagops.testing.prometheus import PrometheusServer
from flagops.testing.traffic import TrafficGenerator
from flagops.testing.wait import wait_for

GROUP, VERSION = "flagops.dev", "v1alpha1"
INTEGRATION = "calendar_sync"


@dataclass
class RolloutEnv:
    namespace: str
    control_plane: ControlPlane
    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    prometheus: PrometheusServer
    traffic: TrafficGenerator
    operator: OperatorProcess

    def create_flag(self, name: str = "calendar-sync", **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FeatureFlag",
            "metadata": {"name": name},
            "spec": {"key": name.replace("-", "_"), "integration": INTEGRATION, **spec},
        }
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "featureflags", body
        )

    def create_rollout(
        self, name: str = "calendar-sync", flag: str = "calendar-sync", **spec: Any
    ) -> None:
        analysis = {"interval": "1s", "minSampleSize": 20, **spec.pop("analysis", {})}
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Rollout",
            "metadata": {"name": name},
            "spec": {
                "flagRef": {"name": flag},
                "stageDuration": "2s",
                "analysis": analysis,
                **spec,
            },
        }
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "rollouts", body
        )

    def rollout(self, name: str = "calendar-sync") -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "rollouts", name
        )
        return obj

    def status(self, name: str = "calendar-sync") -> dict[str, Any]:
        status: dict[str, Any] = self.rollout(name).get("status") or {}
        return status

    def wait_status(
        self,
        check: Callable[[dict[str, Any]], Any],
        timeout: float = 60,
        name: str = "calendar-sync",
    ) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            status = self.status(name)
            return status if check(status) else None

        try:
            result: dict[str, Any] = wait_for(ready, timeout=timeout, message=f"rollout {name}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; last status: {self.status(name)}") from None
        return result

    def events(self, name: str = "calendar-sync") -> list[Any]:
        items = self.core.list_namespaced_event(
            self.namespace, field_selector=f"involvedObject.name={name}"
        ).items
        return sorted(items, key=lambda e: (e.first_timestamp or e.event_time, e.metadata.name))

    def published(self, key: str = "calendar_sync") -> dict[str, Any] | None:
        import json

        try:
            cm = self.core.read_namespaced_config_map("feature-flags", self.namespace)
        except client.exceptions.ApiException:
            return None
        flags: dict[str, Any] = json.loads(cm.data["flags.json"])["flags"]
        return flags.get(key)


@pytest.fixture
def rollout_env(
    flagops_crds: ControlPlane, namespace: str, kube_api: Any, prometheus_server: Any
) -> Iterator[RolloutEnv]:
    generator = TrafficGenerator(INTEGRATION, "calendar_sync", rate=50).start()
    prometheus = prometheus_server([generator.target], scrape_interval="1s")
    operator = OperatorProcess(
        flagops_crds.kubeconfig, [namespace], prometheus_address=prometheus.url
    ).start()
    env = RolloutEnv(
        namespace=namespace,
        control_plane=flagops_crds,
        custom=client.CustomObjectsApi(kube_api),
        core=client.CoreV1Api(kube_api),
        prometheus=prometheus,
        traffic=generator,
        operator=operator,
    )
    try:
        yield env
    finally:
        operator.stop()
        generator.stop()
