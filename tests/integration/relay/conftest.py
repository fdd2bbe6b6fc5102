"""Fixtures for the relay tests (the relay factory itself is in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def other_namespace(control_plane: Any) -> Iterator[str]:
    name = control_plane.create_namespace()
    yield name
    control_plane.delete_namespace(name)
