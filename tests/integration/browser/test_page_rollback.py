"""An operator rollback on an error spike (real Prometheus, rollbackOnError) reaches the
meal-plan page in headless chromium, on both paths, within a second of the decision."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from browser_world import WorldFactory, wait_published

from flagops.api.resources import GROUP, VERSION
from flagops_devtools.demo.browser import LABELS, PATHS
from flagops_devtools.testing.traffic import TrafficGenerator
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


@pytest.fixture
def traffic() -> Iterator[TrafficGenerator]:
    generator = TrafficGenerator("calendar_sync", "calendar_sync", rate=50).start()
    yield generator
    generator.stop()


def rollout_status(world: Any) -> dict[str, Any]:
    rollout = world.custom.get_namespaced_custom_object(
        GROUP, VERSION, world.namespace, "rollouts", "calendar-sync"
    )
    status: dict[str, Any] = rollout.get("status") or {}
    return status


def test_an_error_spike_rollback_reaches_both_paths_within_a_second(
    web_world: WorldFactory, prometheus_server: Any, traffic: TrafficGenerator
) -> None:
    prometheus = prometheus_server([traffic.target], scrape_interval="1s")
    world = web_world(prometheus_address=prometheus.url)
    world.create_flag(enabled=False)
    world.custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        world.namespace,
        "rollouts",
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "Rollout",
            "metadata": {"name": "calendar-sync"},
            "spec": {
                "flagRef": {"name": "calendar-sync"},
                "stageDuration": "10m",
                "internalCohorts": ["internal"],
                "analysis": {"interval": "1s", "minSampleSize": 20, "rollbackOnError": True},
            },
        },
    )
    wait_for(
        lambda: rollout_status(world).get("stage") == "INTERNAL",
        timeout=60,
        message="the Rollout did not reach INTERNAL",
    )
    wait_published(world, lambda s: s["stage"] == "INTERNAL")
    page = world.open("ana", "internal")
    page.wait_shown(True)

    traffic.set(error_share=0.5)
    status = wait_for(
        lambda: (s := rollout_status(world)).get("phase") == "RolledBack" and s,
        timeout=60,
        message="the Rollout did not roll back",
    )
    decided = datetime.fromisoformat(status["stageStartedAt"].replace("Z", "+00:00"))

    page.wait_shown(False, timeout=10)
    for path in PATHS:
        state = page.state(path)
        assert state.changed_at is not None
        delay = state.changed_at - decided.timestamp()
        print(f"operator rollback -> page ({LABELS[path]}): {delay * 1000:.0f} ms")
        assert delay <= 1.0, f"{path}: the rollback took {delay:.3f}s to reach the page"
