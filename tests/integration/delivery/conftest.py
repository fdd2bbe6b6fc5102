"""Fixtures of the delivery integration tests: CRDs for real, helm, dry-run applies."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The rendering helpers live with the unit tests; both suites use the same value sets.
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "unit" / "delivery"))

from delivery_tools import REPO, find_helm

from flagops.testing.controlplane import ControlPlane

MONITORING_CRDS = Path(__file__).with_name("monitoring-crds.yaml")


@pytest.fixture(scope="session")
def helm() -> Path:
    return find_helm()


@pytest.fixture(scope="session")
def delivery_crds(control_plane: ControlPlane) -> ControlPlane:
    """flagops, kopf peering and Prometheus Operator CRDs, applied for real and Established."""
    for source in (("-k", str(REPO / "crds")), ("-f", str(MONITORING_CRDS))):
        control_plane.kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=flagops-delivery-tests",
            *source,
        )
    control_plane.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd/featureflags.flagops.dev",
        "crd/rollouts.flagops.dev",
        "crd/kopfpeerings.kopf.dev",
        "crd/clusterkopfpeerings.kopf.dev",
        "crd/servicemonitors.monitoring.coreos.com",
        "crd/prometheusrules.monitoring.coreos.com",
    )
    return control_plane
