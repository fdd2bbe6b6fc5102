"""Fixtures for the SDK tests: a kubelet-style ConfigMap volume and a wait helper."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client import CollectorRegistry

from flagops.flags import FeatureFlags, build_document

T = TypeVar("T")

_shared_wait_for: Callable[..., Any] | None
try:
    from flagops_devtools.testing.wait import wait_for as _shared_wait_for
except ImportError:  # the shared helper arrives with the control-plane work
    _shared_wait_for = None


def wait_for(predicate: Callable[[], T], timeout: float = 5.0, message: str = "condition") -> T:
    """The shared wait helper when present, else the same contract locally."""
    if _shared_wait_for is not None:
        result: T = _shared_wait_for(predicate, timeout=timeout, interval=0.02, message=message)
        return result
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} within {timeout:g}s")
        time.sleep(0.02)


class KubeletVolume:
    """Writes a ConfigMap volume the way kubelet's AtomicWriter does.

    <dir>/..<timestamp>/flags.json holds the data, <dir>/..data points at that
    folder (swapped by renaming a fresh symlink over it), and
    <dir>/flags.json -> ..data/flags.json never changes.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._generation = 0

    def write_text(self, text: str) -> None:
        self.write_bytes(text.encode("utf-8"))

    def write_bytes(self, data: bytes) -> None:
        self._generation += 1
        stamp = f"..2026_06_01_12_00_00.{os.getpid()}{self._generation:04d}"
        payload = self.root / stamp
        payload.mkdir()
        (payload / "flags.json").write_bytes(data)
        data_link = self.root / "..data"
        old = os.readlink(data_link) if data_link.is_symlink() else None
        tmp = self.root / "..data_tmp"
        os.symlink(stamp, tmp)
        os.rename(tmp, data_link)
        user_link = self.root / "flags.json"
        if not user_link.is_symlink():
            os.symlink("..data/flags.json", user_link)
        if old is not None:
            (self.root / old / "flags.json").unlink()
            (self.root / old).rmdir()

    def write_flags(self, flags: dict[str, Any]) -> str:
        text, revision = build_document(flags)
        self.write_text(text)
        return revision

    def remove_payload(self) -> None:
        """What a deleted ConfigMap key looks like: the data is gone."""
        data = self.root / "..data"
        target = self.root / os.readlink(data)
        data.unlink()
        (target / "flags.json").unlink()
        target.rmdir()


@pytest.fixture
def volume(tmp_path: Path) -> KubeletVolume:
    root = tmp_path / "feature-flags"
    root.mkdir()
    return KubeletVolume(root)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def make_client(registry: CollectorRegistry) -> Iterator[Callable[..., FeatureFlags]]:
    made: list[FeatureFlags] = []

    def make(path: Path, **kwargs: Any) -> FeatureFlags:
        kwargs.setdefault("registry", registry)
        client = FeatureFlags(path, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def flag_state(percent: int = 25, **overrides: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "enabled": True,
        "rolloutPercent": percent,
        "allowedCohorts": [],
        "startDate": None,
        "endDate": None,
        "stage": None,
        "metadata": {},
    }
    state.update(overrides)
    return state


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    return wait_for


@pytest.fixture(name="flag_state")
def flag_state_fixture() -> Callable[..., dict[str, Any]]:
    return flag_state
