"""The malloc arena bound applies on glibc and steps aside for MALLOC_ARENA_MAX."""

from __future__ import annotations

import subprocess
import sys

import pytest

from flagops.cli.malloc import bound_arenas


def test_an_explicit_malloc_arena_max_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert bound_arenas() is False


def test_glibc_takes_the_bound() -> None:
    # In a fresh interpreter: mallopt is process-wide.
    code = "from flagops.cli.malloc import bound_arenas; print(bound_arenas())"
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "True"
