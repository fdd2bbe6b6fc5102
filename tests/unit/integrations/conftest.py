"""Fixtures for the integrations unit tests: fake flags, an isolated metrics registry,
audit capture, and the example third-party integration installed as a distribution."""

from __future__ import annotations

import json
import logging
import shutil
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from integrations_fakes import FakeClock, FakeFlags
from prometheus_client import CollectorRegistry

from flagops.integrations import IntegrationMetrics

EXAMPLE_SOURCE = Path(__file__).parent / "example_integration"


@pytest.fixture
def fake_flags() -> FakeFlags:
    return FakeFlags(calendar_sync=True, weather_widget=True, test_flag=True)


@pytest.fixture
def fake_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics() -> IntegrationMetrics:
    return IntegrationMetrics(CollectorRegistry())


@pytest.fixture
def audit_records(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    caplog.set_level(logging.INFO, logger="flagops.audit")

    def records() -> list[dict[str, Any]]:
        return [json.loads(r.getMessage()) for r in caplog.records if r.name == "flagops.audit"]

    return records


@pytest.fixture
def example_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install the example package into a fresh site folder the way an installer lays it out.

    The package and a `<name>-<version>.dist-info` (METADATA, entry_points.txt,
    built from the example's own pyproject.toml) go into a folder put on
    sys.path, so flagops finds the plug-in through importlib.metadata, the same
    code path as for any pip-installed distribution. (Building a wheel needs the
    `wheel` package, which this offline venv lacks.)
    """
    project = tomllib.loads((EXAMPLE_SOURCE / "pyproject.toml").read_text())["project"]
    site = tmp_path / "site-packages"
    site.mkdir()
    for package in ("flagops_example_integration",):
        shutil.copytree(EXAMPLE_SOURCE / package, site / package)
    dist_name = project["name"].replace("-", "_")
    dist_info = site / f"{dist_name}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines.extend(f"{name} = {target}" for name, target in entries.items())
    (dist_info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    import sys

    for module in [m for m in sys.modules if m.startswith("flagops_example_integration")]:
        del sys.modules[module]
