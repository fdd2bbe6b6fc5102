"""Fixtures for the calendar suite: the local Calendar v3 + token server, credential files
mounted the way a Secret is, a real flags.json read by the real SDK, and a service factory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from flagops.flags import FeatureFlags, build_document
from flagops.integrations import IntegrationMetrics
from flagops.integrations.calendar import CalendarSyncIntegration
from flagops_devtools.calendar_server import CalendarServer


def flag_entry(enabled: bool = True, percent: int = 100) -> dict[str, Any]:
    return {
        "enabled": enabled,
        "rolloutPercent": percent,
        "allowedCohorts": [],
        "startDate": None,
        "endDate": None,
        "stage": "FULL" if enabled else "DISABLED",
        "metadata": {},
    }


@pytest.fixture
def calendar_server() -> Iterator[CalendarServer]:
    with CalendarServer() as server:
        yield server


@pytest.fixture
def secret_mount(tmp_path: Path) -> Path:
    """A folder standing in for the mounted Secret."""
    folder = tmp_path / "secret"
    folder.mkdir()
    return folder


@pytest.fixture
def service_account_file(calendar_server: CalendarServer, secret_mount: Path) -> Path:
    return calendar_server.create_service_account_file(secret_mount / "credentials.json")


@pytest.fixture
def authorized_user_file(calendar_server: CalendarServer, tmp_path: Path) -> Path:
    return calendar_server.create_authorized_user_file(tmp_path / "authorized_user.json")


@pytest.fixture
def flags_file(tmp_path: Path) -> Path:
    path = tmp_path / "flags" / "flags.json"
    path.parent.mkdir()
    text, _ = build_document({"calendar_sync": flag_entry()})
    path.write_text(text)
    return path


@pytest.fixture
def set_flag(flags_file: Path) -> Callable[[bool], None]:
    """Rewrite flags.json with calendar_sync on or off."""

    def write(enabled: bool) -> None:
        flags_file.write_text(build_document({"calendar_sync": flag_entry(enabled)})[0])

    return write


@pytest.fixture
def metrics() -> IntegrationMetrics:
    return IntegrationMetrics(CollectorRegistry())


ServiceFactory = Callable[..., CalendarSyncIntegration]


@pytest.fixture
def make_service(
    calendar_server: CalendarServer,
    service_account_file: Path,
    flags_file: Path,
    metrics: IntegrationMetrics,
) -> Iterator[ServiceFactory]:
    """make_service(connect=True, **options) -> a CalendarSyncIntegration on the real client."""
    made: list[tuple[CalendarSyncIntegration, FeatureFlags]] = []

    def make(connect: bool = True, **options: Any) -> CalendarSyncIntegration:
        flags = FeatureFlags(flags_file, reload_interval=0)
        service = CalendarSyncIntegration(flags=flags, metrics=metrics)
        config: dict[str, Any] = {
            "credentials_file": str(service_account_file),
            "api_endpoint": calendar_server.url,
            "token_uri": calendar_server.token_uri,
            # The library's own retry sleeps (rand() * 2**n s) scaled down for the suite.
            "retry_backoff_scale": 0.01,
            **options,
        }
        asyncio.run(service.init(config))
        if connect:
            asyncio.run(service.connect())
        made.append((service, flags))
        return service

    yield make
    for service, flags in made:
        asyncio.run(service.disconnect())
        flags.close()


@pytest.fixture
def week_plan() -> Callable[..., dict[str, Any]]:
    return make_week_plan


def make_week_plan(plan_id: str = "week-1") -> dict[str, Any]:
    """Seven days, three meals each (21 events)."""
    days = []
    for day in range(7):
        date = f"2024-12-{16 + day:02d}"
        days.append(
            {
                "date": date,
                "meals": [
                    {
                        "id": f"d{day}-breakfast",
                        "type": "breakfast",
                        "name": "Oatmeal",
                        "ingredients": ["oats", "milk"],
                    },
                    {
                        "id": f"d{day}-lunch",
                        "type": "lunch",
                        "name": "Lentil soup",
                        "ingredients": ["lentils", "carrot"],
                        "notes": "batch cook",
                    },
                    {
                        "id": f"d{day}-dinner",
                        "type": "dinner",
                        "name": "Curry",
                        "time": "18:30",
                        "durationMinutes": 50,
                    },
                ],
            }
        )
    return {"id": plan_id, "days": days}
