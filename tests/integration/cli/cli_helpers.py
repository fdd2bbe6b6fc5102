"""Helpers for the kubectl-flagops integration tests (imported by name: no packages here)."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from kubernetes import client, watch

from flagops.api.actions import ACTION_ANNOTATION, Action, parse_action
from flagops.api.common import format_timestamp
from flagops.api.resources import FEATUREFLAGS, ROLLOUTS
from flagops.cli import plugin

REPO = Path(__file__).resolve().parents[3]
VENV_BIN = REPO / ".venv" / "bin"


@dataclass
class PluginRun:
    code: int
    out: str
    err: str


def run_plugin(*argv: str) -> PluginRun:
    """kubectl-flagops in this process (pass --kubeconfig: KUBECONFIG is not ours to set)."""
    out, err = io.StringIO(), io.StringIO()
    code = plugin.main(list(argv), out=out, err=err)
    return PluginRun(code, out.getvalue(), err.getvalue())


def create_flag(
    custom: client.CustomObjectsApi, namespace: str, name: str, **spec: Any
) -> dict[str, Any]:
    body = {
        "apiVersion": FEATUREFLAGS.api_version,
        "kind": FEATUREFLAGS.kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    result = cast(
        "dict[str, Any]",
        custom.create_namespaced_custom_object(
            FEATUREFLAGS.group, FEATUREFLAGS.version, namespace, FEATUREFLAGS.plural, body
        ),
    )
    return result


def create_rollout(
    custom: client.CustomObjectsApi, namespace: str, name: str, flag: str, **spec: Any
) -> dict[str, Any]:
    body = {
        "apiVersion": ROLLOUTS.api_version,
        "kind": ROLLOUTS.kind,
        "metadata": {"name": name},
        "spec": {"flagRef": {"name": flag}, **spec},
    }
    result = cast(
        "dict[str, Any]",
        custom.create_namespaced_custom_object(
            ROLLOUTS.group, ROLLOUTS.version, namespace, ROLLOUTS.plural, body
        ),
    )
    return result


def get_object(
    custom: client.CustomObjectsApi, namespace: str, plural: str, name: str
) -> dict[str, Any]:
    result = cast(
        "dict[str, Any]",
        custom.get_namespaced_custom_object("flagops.dev", "v1alpha1", namespace, plural, name),
    )
    return result


Responder = Callable[[Action], tuple[str, str]]


class ActionResponderStandIn:
    """Plays the operator's part of the action protocol, for client tests only.

    Watches the namespace's Rollouts and answers each new annotation id in
    status.lastAction (through the status subresource) with what `respond`
    returns. It never changes a stage: the real controller is tested in
    test_cli_operator.py.
    """

    def __init__(
        self, api: client.ApiClient, namespace: str, respond: Responder | None = None
    ) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.respond = respond or (lambda action: ("Succeeded", f"{action.verb.value} done"))
        self.seen: list[Action] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="action-responder", daemon=True)

    def start(self) -> ActionResponderStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            watcher = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in watcher.stream(  # type: ignore[no-untyped-call]
                    self.custom.list_namespaced_custom_object,
                    ROLLOUTS.group, ROLLOUTS.version, self.namespace, ROLLOUTS.plural,
                    timeout_seconds=1,
                ):  # fmt: skip
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._answer(event["object"])
                    if self._stop.is_set():
                        break
            except Exception:  # the namespace may vanish at teardown; watch again
                if self._stop.wait(0.1):
                    return

    def _answer(self, obj: dict[str, Any]) -> None:
        value = (obj["metadata"].get("annotations") or {}).get(ACTION_ANNOTATION)
        if not value:
            return
        action = parse_action(value)
        last = (obj.get("status") or {}).get("lastAction") or {}
        if last.get("id") == action.id:
            return
        result, message = self.respond(action)
        record: dict[str, Any] = {
            "name": action.verb.value,
            "id": action.id,
            "at": format_timestamp(datetime.now(UTC)),
            "result": result,
            "message": message,
        }
        if action.reason:
            record["reason"] = action.reason
        self.seen.append(action)
        self.custom.patch_namespaced_custom_object_status(
            ROLLOUTS.group, ROLLOUTS.version, self.namespace, ROLLOUTS.plural,
            obj["metadata"]["name"], {"status": {"lastAction": record}},
        )  # fmt: skip
