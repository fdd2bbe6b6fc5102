"""Fixtures for the rollout controller: the operator, a real Prometheus, controlled traffic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rollout_controller_env import EnvFactory, RolloutEnv

from flagops_devtools.testing.controlplane import ControlPlane


@pytest.fixture
def make_env(
    flagops_crds: ControlPlane, namespace: str, kube_api: Any, prometheus_server: Any
) -> Iterator[EnvFactory]:
    factory = EnvFactory(flagops_crds, namespace, kube_api, prometheus_server)
    try:
        yield factory
    finally:
        for stop in reversed(factory.cleanup):
            stop()


@pytest.fixture
def rollout_env(make_env: EnvFactory) -> RolloutEnv:
    return make_env()
