"""FeatureFlags and Rollouts created through the apiserver, as a user's kubectl apply would."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flagops.api.resources import GROUP, VERSION

__all__ = ["GROUP", "VERSION", "create_flag", "create_rollout"]


def create_flag(custom: Any, namespace: str, name: str, **spec: Any) -> None:
    """The FeatureFlag `name` with `spec` (its `key` defaults to `name`), via CustomObjectsApi."""
    _create(custom, namespace, "featureflags", "FeatureFlag", name, {"key": name, **spec})


def create_rollout(custom: Any, namespace: str, name: str, **spec: Any) -> None:
    """The Rollout `name` with `spec` (its flagRef defaults to the flag `name`)."""
    _create(custom, namespace, "rollouts", "Rollout", name, {"flagRef": {"name": name}, **spec})


def _create(
    custom: Any, namespace: str, plural: str, kind: str, name: str, spec: dict[str, Any]
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, body)


def stage_steps(events: Iterable[Any]) -> list[tuple[str, str]]:
    """(from, to) of every StageAdvanced Event among `events` (oldest first given so)."""
    steps = []
    for event in events:
        if event.reason == "StageAdvanced":
            head = event.message.split(":")[0].split(" by ")[0]
            old, new = (part.strip() for part in head.split("->"))
            steps.append((old, new))
    return steps
