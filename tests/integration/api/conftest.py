"""Fixtures of the API-layer integration tests: the CRDs installed, a namespace per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flagops_devtools.testing.controlplane import ControlPlane

REPO = Path(__file__).resolve().parents[3]


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
