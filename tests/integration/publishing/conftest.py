"""Fixtures for publishing tests (the operator factory and clients are in tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest

from flagops_devtools.testing.operator import OperatorProcess


@pytest.fixture
def operator(operator_factory: Any, namespace: str) -> OperatorProcess:
    started: OperatorProcess = operator_factory([namespace])
    return started
