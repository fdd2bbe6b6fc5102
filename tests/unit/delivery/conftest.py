from __future__ import annotations

import os
from pathlib import Path

import pytest
from delivery_tools import ToolNotFound, find_helm, find_tool


def _required(find: object) -> Path:
    """The tool, or a skip on a laptop without it; under `make test`/CI a missing tool fails."""
    try:
        return find()  # type: ignore[operator,no-any-return]
    except ToolNotFound as error:
        if os.environ.get("CI") or os.environ.get("FLAGOPS_KUBE_BIN"):
            raise
        pytest.skip(str(error))


@pytest.fixture(scope="session")
def helm() -> Path:
    return _required(find_helm)


@pytest.fixture(scope="session")
def promtool() -> Path:
    return _required(lambda: find_tool("promtool", "hack/setup-system.sh installs prometheus"))


@pytest.fixture(scope="session")
def kubectl() -> Path:
    return _required(lambda: find_tool("kubectl", "install kubectl"))
