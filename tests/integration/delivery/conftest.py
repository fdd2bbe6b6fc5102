"""Fixtures of the delivery integration tests: CRDs for real, helm, dry-run applies."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The rendering helpers live with the unit tests; both suites use the same value sets.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "delivery"))

from delivery_cluster import Install
from delivery_tools import find_helm

from flagops_devtools.testing.controlplane import ControlPlane

MONITORING_CRDS = Path(__file__).with_name("monitoring-crds.yaml")


@pytest.fixture(scope="session")
def helm() -> Path:
    return find_helm()


@pytest.fixture(scope="session")
def delivery_crds(flagops_crds: ControlPlane) -> ControlPlane:
    """flagops and kopf peering CRDs (shared), plus the Prometheus Operator CRDs, Established."""
    flagops_crds.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=flagops-delivery-tests",
        "-f",
        str(MONITORING_CRDS),
    )
    flagops_crds.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
    )
    return flagops_crds


@pytest.fixture
def apps_namespace(delivery_crds: ControlPlane) -> Iterator[str]:
    name = delivery_crds.create_namespace()
    yield name
    delivery_crds.delete_namespace(name)


@pytest.fixture
def install_factory(
    delivery_crds: ControlPlane, namespace: str, helm: Path, tmp_path: Path
) -> Iterator[Any]:
    installs: list[Install] = []

    def make(values: dict[str, Any]) -> Install:
        install = Install(delivery_crds, namespace, values)
        install.apply(helm, tmp_path)
        installs.append(install)
        return install

    yield make
    for install in installs:
        install.delete()
