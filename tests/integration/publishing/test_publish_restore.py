"""How fast a deleted or hand-edited flag ConfigMap is restored (real apiserver; prints the
figures, target 1 s, deadline 5 s)."""

from __future__ import annotations

import statistics
import time

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from test_publish import CM, create, feature_flag, wait_published

from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

DEADLINE = 5.0
ROUNDS = 3
# The operator folds writes that follow each other within `publish_max_interval` (2 s)
# into a paced burst; a lone deletion or edit comes after a quiet spell this long.
QUIET = 2.5


def live_text(core: client.CoreV1Api, namespace: str) -> str | None:
    try:
        data = core.read_namespaced_config_map(CM, namespace).data or {}
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    text: str | None = data.get("flags.json")
    return text


def test_restore_time_after_delete_and_hand_edit(
    operator: OperatorProcess,
    namespace: str,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
) -> None:
    for i in range(20):
        create(custom, namespace, feature_flag(f"flag-{i}", enabled=True, rolloutPercent=i))
    wait_published(core, namespace, lambda f: len(f) == 20)
    original = live_text(core, namespace)
    assert original is not None

    figures: dict[str, list[float]] = {"deleted": [], "hand-edited": []}
    quiet_from = time.monotonic()
    for _ in range(ROUNDS):
        for kind in figures:
            # Part of the scenario, not synchronisation: nothing happens in the namespace.
            quiet_until = quiet_from + QUIET
            wait_for(lambda: time.monotonic() >= quiet_until, timeout=QUIET + 1)  # noqa: B023
            started = time.monotonic()
            if kind == "deleted":
                core.delete_namespaced_config_map(CM, namespace)
            else:
                core.patch_namespaced_config_map(
                    CM, namespace, {"data": {"flags.json": '{"hand": "edit"}'}}
                )
            wait_for(
                lambda: live_text(core, namespace) == original,
                timeout=DEADLINE,
                interval=0.01,
                message=f"{kind} ConfigMap not restored",
            )
            figures[kind].append(time.monotonic() - started)
            quiet_from = time.monotonic()
    for kind, times in figures.items():
        print(
            f"{kind} ConfigMap restored: median {statistics.median(times) * 1000:.0f} ms,"
            f" max {max(times) * 1000:.0f} ms over {ROUNDS} rounds"
        )
