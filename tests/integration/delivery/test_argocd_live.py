"""Argo CD's Lua on objects the operator really wrote, and its actions performed by it.

The operator runs as the chart's ServiceAccount; each action's annotation is
written the way Argo CD applies an action (a patch of the object the Lua returns).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from delivery_argocd import ACTIONS, ArgoLua, lua
from delivery_cluster import Install, run_operator

from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.process import ManagedProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

ACTION = "flagops.dev/action"


class Live:
    def __init__(self, plane: ControlPlane, namespace: str, process: ManagedProcess) -> None:
        self.plane = plane
        self.namespace = namespace
        self.process = process
        self.argo = ArgoLua()

    def get(self, kind: str, name: str) -> dict[str, Any]:
        result = self.plane.kubectl("get", kind, name, "-n", self.namespace, "-o", "json")
        obj: dict[str, Any] = json.loads(result.stdout)
        return obj

    def rollout(self) -> dict[str, Any]:
        return self.get("rollouts.flagops.dev", "calendar-sync")

    def wait_rollout(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> Any:
        def check() -> dict[str, Any] | None:
            assert self.process.running(), self.process.describe_failure()
            obj = self.rollout()
            return obj if predicate(obj.get("status", {})) else None

        try:
            return wait_for(check, timeout=60, message=what)
        except TimeoutError as error:
            raise AssertionError(
                f"{error}\nstatus: {self.rollout().get('status')}\n"
                f"{self.process.describe_failure()}"
            ) from error

    def health(self, obj: dict[str, Any]) -> str:
        script = "health-rollout.lua" if obj["kind"] == "Rollout" else "health-featureflag.lua"
        status: str = self.argo.run(lua(script), obj)["status"]
        return status

    def enabled_actions(self, obj: dict[str, Any]) -> set[str]:
        actions = self.argo.run(lua("actions-discovery.lua"), obj)
        assert set(actions) == set(ACTIONS)
        return {name for name, spec in actions.items() if not spec["disabled"]}

    def act(self, verb: str) -> str:
        """Runs the action's Lua and applies its result as Argo CD does; the action id."""
        before = self.rollout()
        after = self.argo.run(lua(f"actions-{verb}.lua"), before)
        value = after["metadata"]["annotations"][ACTION]
        patch = {"metadata": {"annotations": {ACTION: value}}}
        self.plane.kubectl(
            "patch",
            "rollouts.flagops.dev",
            "calendar-sync",
            "-n",
            self.namespace,
            "--type=merge",
            "-p",
            json.dumps(patch),
        )
        return str(value.split("@", 1)[1])


def test_argocd_lua_on_live_objects(
    delivery_crds: ControlPlane,
    install_factory: Callable[[dict[str, Any]], Install],
    apps_namespace: str,
    tmp_path: Path,
    prometheus_server: Any,
) -> None:
    peering = f"argo-{apps_namespace}"
    install = install_factory({"peering": peering})
    configmap = f"flags-{apps_namespace}"
    process = run_operator(
        delivery_crds,
        install,
        tmp_path,
        configmap,
        prometheus_server([]).url,
        f"--peering={peering}",
    )
    live = Live(delivery_crds, apps_namespace, process)
    try:
        flag = {
            "apiVersion": "flagops.dev/v1alpha1",
            "kind": "FeatureFlag",
            "metadata": {"name": "calendar-sync"},
            "spec": {"key": "calendar_sync", "enabled": False, "integration": "calendar_sync"},
        }
        rollout = {
            "apiVersion": "flagops.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "calendar-sync"},
            "spec": {"flagRef": {"name": "calendar-sync"}, "targetStage": "INTERNAL"},
        }
        delivery_crds.kubectl(
            "apply",
            "-n",
            apps_namespace,
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [flag, rollout]}),
        )

        obj = live.wait_rollout(lambda s: s.get("phase") == "Completed", "Rollout Completed")
        assert live.health(obj) == "Healthy"
        assert live.enabled_actions(obj) == {"rollback"}
        published = wait_for(
            lambda: (
                live.get("featureflags.flagops.dev", "calendar-sync")
                if live.health(live.get("featureflags.flagops.dev", "calendar-sync")) == "Healthy"
                else None
            ),
            timeout=30,
            message="FeatureFlag healthy in Argo CD's eyes",
        )
        assert published["status"]["conditions"]

        action_id = live.act("rollback")
        obj = live.wait_rollout(
            lambda s: (s.get("lastAction") or {}).get("id") == action_id, "rollback handled"
        )
        assert obj["status"]["lastAction"]["result"] == "Succeeded"
        assert obj["status"]["phase"] == "RolledBack"
        assert live.health(obj) == "Degraded"
        assert live.enabled_actions(obj) == {"retry"}

        action_id = live.act("retry")
        obj = live.wait_rollout(
            lambda s: (
                (s.get("lastAction") or {}).get("id") == action_id and s.get("phase") == "Completed"
            ),
            "retry handled and Completed again",
        )
        assert obj["status"]["lastAction"]["result"] == "Succeeded"
        assert live.health(obj) == "Healthy"
    finally:
        process.stop()
