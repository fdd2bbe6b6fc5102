"""The rollout controller tests' world: the operator, a real Prometheus, controlled traffic."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from kubernetes import client

from flagops.api.actions import ACTION_ANNOTATION, format_action, new_action_id
from flagops.api.resources import GROUP, VERSION
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.objects import stage_steps
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.traffic import TrafficGenerator
from flagops_devtools.testing.wait import wait_for

INTEGRATION = "calendar_sync"
# Every write the tests make carries this manager, so managedFields tell the tests'
# writes from the operator's (which uses the same Python client).
TEST_MANAGER = "flagops-test"
ARGOCD_FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "argocd"
# Set to 1 to (re)write tests/fixtures/argocd/rollout-<phase>.json from the objects seen.
RECORD_ENV = "FLAGOPS_RECORD_ARGOCD_FIXTURES"


@dataclass
class RolloutEnv:
    namespace: str
    control_plane: ControlPlane
    custom: client.CustomObjectsApi
    core: client.CoreV1Api
    prometheus: PrometheusServer
    traffic: TrafficGenerator
    operator: OperatorProcess
    operators: list[OperatorProcess] = field(default_factory=list)

    # --- writing, as a release owner would ------------------------------------------

    def create_flag(self, name: str = "calendar-sync", **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FeatureFlag",
            "metadata": {"name": name},
            "spec": {"key": name.replace("-", "_"), "integration": INTEGRATION, **spec},
        }
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "featureflags", body, field_manager=TEST_MANAGER
        )

    def create_rollout(
        self, name: str = "calendar-sync", flag: str = "calendar-sync", **spec: Any
    ) -> dict[str, Any]:
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
        return as_dict(
            self.custom.create_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "rollouts", body, field_manager=TEST_MANAGER
            )
        )

    def patch_spec(self, name: str = "calendar-sync", **spec: Any) -> int:
        """Merge-patch the Rollout's spec; the new metadata.generation."""
        patched = as_dict(
            self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                self.namespace,
                "rollouts",
                name,
                {"spec": spec},
                field_manager=TEST_MANAGER,
            )
        )
        return int(patched["metadata"]["generation"])

    def act(
        self,
        verb: str,
        name: str = "calendar-sync",
        *,
        reason: str | None = None,
        force: bool = False,
        action_id: str | None = None,
    ) -> str:
        """Write the action annotation as `kubectl flagops` does; the action id."""
        action_id = action_id or new_action_id()
        value = format_action(verb, action_id, reason=reason, force=force)
        self.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            self.namespace,
            "rollouts",
            name,
            {"metadata": {"annotations": {ACTION_ANNOTATION: value}}},
            field_manager=TEST_MANAGER,
        )
        return action_id

    def act_and_wait(self, verb: str, name: str = "calendar-sync", **kw: Any) -> dict[str, Any]:
        """Perform an action; the status once status.lastAction reports it."""
        action_id = self.act(verb, name, **kw)
        return self.wait_status(
            lambda s: (s.get("lastAction") or {}).get("id") == action_id, timeout=30, name=name
        )

    def delete_rollout(self, name: str = "calendar-sync") -> None:
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "rollouts", name
        )

    # --- reading ----------------------------------------------------------------------

    def rollout(self, name: str = "calendar-sync") -> dict[str, Any]:
        return as_dict(
            self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "rollouts", name
            )
        )

    def flag(self, name: str = "calendar-sync") -> dict[str, Any]:
        return as_dict(
            self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "featureflags", name
            )
        )

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

    def wait_analyses(self, count: int, name: str = "calendar-sync", timeout: float = 30) -> None:
        """Wait until `count` more analyses than now are seen (time passing, observed).

        The harness's operator writes status after every analysis (heartbeat 0), and the
        poll is far shorter than any test's interval, so each new lastAnalysis is seen.
        """
        first = (self.status(name).get("lastAnalysis") or {}).get("time")
        seen: set[str] = set()

        def more() -> bool:
            newest = (self.status(name).get("lastAnalysis") or {}).get("time")
            if newest is not None and newest != first:
                seen.add(newest)
            return len(seen) >= count

        wait_for(more, timeout=timeout, message=f"{count} more analyses of {name}")

    def events(self, name: str = "calendar-sync", kind: str = "Rollout") -> list[Any]:
        items = self.core.list_namespaced_event(
            self.namespace,
            field_selector=f"involvedObject.name={name},involvedObject.kind={kind}",
        ).items
        return sorted(items, key=lambda e: (e.first_timestamp or e.event_time, e.metadata.name))

    def wait_events(
        self, reason: str, name: str = "calendar-sync", kind: str = "Rollout", count: int = 1
    ) -> list[Any]:
        """Events with `reason` once there are `count` (the operator posts them after status)."""

        def enough() -> list[Any] | None:
            found = [e for e in self.events(name, kind) if e.reason == reason]
            return found if len(found) >= count else None

        result: list[Any] = wait_for(enough, timeout=15, message=f"{count} {reason} Event(s)")
        return result

    def reasons(self, name: str = "calendar-sync", kind: str = "Rollout") -> list[str]:
        return [e.reason for e in self.events(name, kind)]

    def stage_steps(self, name: str = "calendar-sync") -> list[tuple[str, str]]:
        """(from, to) of every StageAdvanced Event, oldest first."""
        return stage_steps(self.events(name))

    def published(self, key: str = "calendar_sync") -> dict[str, Any] | None:
        try:
            cm = self.core.read_namespaced_config_map("feature-flags", self.namespace)
        except client.exceptions.ApiException:
            return None
        flags: dict[str, Any] = json.loads((cm.data or {})["flags.json"])["flags"]
        return flags.get(key)

    def wait_published(
        self, check: Callable[[dict[str, Any]], bool], key: str = "calendar_sync"
    ) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            published = self.published(key)
            return published if published is not None and check(published) else None

        result: dict[str, Any] = wait_for(ready, timeout=15, message=f"published {key}")
        return result

    def jobs(self) -> list[Any]:
        batch = client.BatchV1Api(self.custom.api_client)
        return list(batch.list_namespaced_job(self.namespace).items)

    def record(self, phase: str, name: str = "calendar-sync") -> None:
        """Keep the live object as an Argo CD health fixture (only when asked to)."""
        if os.environ.get(RECORD_ENV) != "1":
            return
        obj = self.rollout(name)
        assert (obj.get("status") or {}).get("phase") == phase
        obj["metadata"].pop("managedFields", None)
        ARGOCD_FIXTURES.mkdir(parents=True, exist_ok=True)
        path = ARGOCD_FIXTURES / f"rollout-{phase.lower()}.json"
        path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def as_dict(value: object) -> dict[str, Any]:
    """The client's untyped answer for a custom object, as what it is: JSON."""
    assert isinstance(value, dict)
    return value


def analyses(status: dict[str, Any]) -> list[dict[str, Any]]:
    """healthHistory entries of analyses, newest first: one per change of verdict or stage."""
    return [h for h in status.get("healthHistory") or [] if h.get("source") == "Analysis"]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def spec_writers(obj: dict[str, Any]) -> set[str]:
    """Managers that own any spec field of `obj`."""
    return {
        entry["manager"]
        for entry in obj["metadata"].get("managedFields") or []
        if "f:spec" in (entry.get("fieldsV1") or {})
    }


@dataclass
class EnvFactory:
    control_plane: ControlPlane
    namespace: str
    kube_api: Any
    prometheus_server: Callable[..., PrometheusServer]
    cleanup: list[Callable[[], None]] = field(default_factory=list)

    def operator(self, prometheus: PrometheusServer, **kwargs: Any) -> OperatorProcess:
        operator = OperatorProcess(
            self.control_plane.kubeconfig,
            [self.namespace],
            prometheus_address=prometheus.url,
            **kwargs,
        )
        self.cleanup.append(operator.stop)
        return operator

    def __call__(
        self, *, rate: float = 50, start_operator: bool = True, **operator_kwargs: Any
    ) -> RolloutEnv:
        generator = TrafficGenerator(INTEGRATION, "calendar_sync", rate=rate).start()
        self.cleanup.append(generator.stop)
        prometheus = self.prometheus_server([generator.target], scrape_interval="1s")
        operator = self.operator(prometheus, **operator_kwargs)
        if start_operator:
            operator.start()
        return RolloutEnv(
            namespace=self.namespace,
            control_plane=self.control_plane,
            custom=client.CustomObjectsApi(self.kube_api),
            core=client.CoreV1Api(self.kube_api),
            prometheus=prometheus,
            traffic=generator,
            operator=operator,
            operators=[operator],
        )
