"""CalendarSyncIntegration in mock mode: offline, same sync logic, operations logged."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import pytest
from integrations_fakes import FakeFlags, sample
from pydantic import ValidationError

from flagops.integrations import (
    IntegrationConfigError,
    IntegrationDisabledError,
    IntegrationMetrics,
    IntegrationStatus,
)
from flagops.integrations.calendar import CalendarSyncIntegration, SyncAction, SyncState

PLAN: dict[str, Any] = {
    "id": "plan-7",
    "days": [
        {
            "date": "2024-12-18",
            "meals": [
                {"id": "b", "type": "breakfast", "name": "Oatmeal", "ingredients": ["oats"]},
                {"id": "l", "type": "lunch", "name": "Soup"},
            ],
        },
        {"date": "2024-12-19", "meals": [{"id": "d", "type": "dinner", "name": "Curry"}]},
    ],
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("mock mode opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture
def mock_service(
    fake_flags: FakeFlags, metrics: IntegrationMetrics, no_network: None
) -> CalendarSyncIntegration:
    service = CalendarSyncIntegration(flags=fake_flags, metrics=metrics)
    asyncio.run(service.init({"mock_mode": True}))
    asyncio.run(service.connect())
    return service


def test_mock_sync_resync_and_status(
    mock_service: CalendarSyncIntegration,
    metrics: IntegrationMetrics,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="flagops.integrations")

    async def scenario() -> Any:
        first = await mock_service.sync_meal_plan(PLAN)
        again = await mock_service.sync_meal_plan(PLAN)
        changed = {
            **PLAN,
            "days": [
                PLAN["days"][0],
                {
                    **PLAN["days"][1],
                    "meals": [{"id": "d", "type": "dinner", "name": "Green curry"}],
                },
            ],
        }
        third = await mock_service.sync_meal_plan(changed)
        status = await mock_service.get_sync_status(["b", "l", "d", "never"])
        return first, again, third, status

    first, again, third, status = asyncio.run(scenario())
    assert mock_service.status is IntegrationStatus.CONNECTED
    assert [o.action for o in first.outcomes] == [SyncAction.CREATED] * 3
    assert [o.action for o in again.outcomes] == [SyncAction.UNCHANGED] * 3
    assert [o.action for o in third.outcomes] == [
        SyncAction.UNCHANGED,
        SyncAction.UNCHANGED,
        SyncAction.UPDATED,
    ]
    assert {k: v.state for k, v in status.items()} == {
        "b": SyncState.SYNCED,
        "l": SyncState.SYNCED,
        "d": SyncState.SYNCED,
        "never": SyncState.PENDING,
    }
    assert all(o.html_link.startswith("mock://") for o in first.outcomes)
    assert sum("[mock] events.insert" in r.getMessage() for r in caplog.records) == 3
    assert sample(metrics, "calendar_sync", "calendar_sync", "success") == 9 + 4


def test_mock_unsync_and_deleted_remotely(mock_service: CalendarSyncIntegration) -> None:
    async def scenario() -> Any:
        await mock_service.sync_meal_plan(PLAN)
        removed = await mock_service.unsync_meal("b")
        again = await mock_service.unsync_meal("b", plan_id="plan-7")
        status = await mock_service.get_sync_status(["b"], plan_id="plan-7")
        return removed, again, status

    removed, again, status = asyncio.run(scenario())
    assert removed.deleted == [again.already_gone[0]]
    assert status["b"].state is SyncState.DELETED_REMOTELY


def test_invalid_plan_writes_nothing(
    mock_service: CalendarSyncIntegration, metrics: IntegrationMetrics
) -> None:
    bad = {
        "id": "p",
        "days": [
            {
                "date": "2024-12-18",
                "meals": [{"id": "ok", "name": "Fine"}, {"id": "bad", "name": "x", "time": "7pm"}],
            }
        ],
    }
    with pytest.raises(ValidationError, match=r"time"):
        asyncio.run(mock_service.sync_meal_plan(bad))
    assert sample(metrics, "calendar_sync", "calendar_sync", "success") == 0


def test_flag_off_refuses_plan(
    fake_flags: FakeFlags, metrics: IntegrationMetrics, no_network: None
) -> None:
    service = CalendarSyncIntegration(flags=fake_flags, metrics=metrics)
    asyncio.run(service.init({"mock_mode": True}))
    asyncio.run(service.connect())
    fake_flags.states["calendar_sync"] = False
    with pytest.raises(IntegrationDisabledError):
        asyncio.run(service.sync_meal_plan(PLAN))


def test_config_validation(fake_flags: FakeFlags, metrics: IntegrationMetrics) -> None:
    service = CalendarSyncIntegration(flags=fake_flags, metrics=metrics)
    with pytest.raises(IntegrationConfigError, match="credentials_file is required"):
        asyncio.run(service.init({}))
    with pytest.raises(IntegrationConfigError, match="num_retries"):
        asyncio.run(service.init({"mock_mode": True, "num_retries": -1}))


def test_single_meal_sync(mock_service: CalendarSyncIntegration) -> None:
    outcome = asyncio.run(
        mock_service.sync_meal("2024-12-20", {"id": "s1", "type": "snack", "name": "Apple"})
    )
    assert outcome.action is SyncAction.CREATED and outcome.date == "2024-12-20"
