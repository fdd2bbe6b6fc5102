"""Fixtures for grouped analysis: apps per integration, a real Prometheus, the operator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from analysis_world import WorldFactory

from flagops_devtools.testing.controlplane import ControlPlane


@pytest.fixture
def make_world(
    flagops_crds: ControlPlane, namespace: str, kube_api: Any, prometheus_server: Any
) -> Iterator[WorldFactory]:
    factory = WorldFactory(flagops_crds, namespace, kube_api, prometheus_server)
    try:
        yield factory
    finally:
        for stop in reversed(factory.cleanup):
            stop()
