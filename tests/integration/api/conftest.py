"""Fixtures of the API-layer integration tests: the CRDs installed, a namespace per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flagops.api.resources import FEATUREFLAGS, ROLLOUTS
from flagops.testing.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def flagops_crds(control_plane: ControlPlane) -> ControlPlane:
    """The committed CRDs (crds/), applied as a user would, and Established."""
    control_plane.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=flagops-api-tests",
        "-k",
        str(REPO / "crds"),
    )
    control_plane.kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        f"crd/{FEATUREFLAGS.crd_name}",
        f"crd/{ROLLOUTS.crd_name}",
        "crd/kopfpeerings.kopf.dev",
        "crd/clusterkopfpeerings.kopf.dev",
    )
    return control_plane


@pytest.fixture(scope="module")
def api_namespace(flagops_crds: ControlPlane) -> Iterator[str]:
    """One namespace for a module's many small create/reject checks."""
    name = flagops_crds.create_namespace()
    yield name
    flagops_crds.delete_namespace(name)


@pytest.fixture(scope="session")
def custom_objects(kube_api: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(kube_api)
