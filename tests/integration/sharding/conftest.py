"""Each shard test gets a control plane, a Prometheus and app traffic of its own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from shards_env import INTEGRATION, REPO, ShardWorld

from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.crds import apply_crds
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.traffic import TrafficGenerator


@pytest.fixture
def world() -> Iterator[ShardWorld]:
    with ControlPlane(controller_manager=False) as plane:
        apply_crds(plane, REPO / "crds")
        traffic = TrafficGenerator(INTEGRATION, "calendar_sync", rate=50).start()
        prometheus = PrometheusServer([traffic.target], scrape_interval="1s")
        prometheus.start()
        world = ShardWorld(plane, prometheus)
        try:
            yield world
        finally:
            world.stop_all()
            prometheus.close()
            traffic.stop()
