"""Calendar sync on the real google-api-python-client / google-auth, over HTTP, against the
local Calendar v3 + token server."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from flagops.integrations import IntegrationConnectionError, IntegrationMetrics, IntegrationStatus
from flagops.integrations.calendar import CalendarSyncIntegration, SyncAction, SyncState, event_id
from flagops_devtools.calendar_server import CalendarServer, Fault
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

PLAN3 = {
    "id": "plan-3",
    "days": [
        {
            "date": "2024-12-18",
            "meals": [
                {"id": "a", "type": "breakfast", "name": "Eggs"},
                {"id": "b", "type": "lunch", "name": "Salad"},
                {"id": "c", "type": "dinner", "name": "Pasta"},
            ],
        }
    ],
}


def sample(metrics: IntegrationMetrics, outcome: str) -> float:
    value = metrics.operations.labels(
        integration="calendar_sync", flag="calendar_sync", outcome=outcome
    )._value.get()
    return float(value)


def test_week_plan_synced(
    make_service: Callable[..., CalendarSyncIntegration],
    calendar_server: CalendarServer,
    week_plan: Callable[..., dict[str, Any]],
    metrics: IntegrationMetrics,
) -> None:
    service = make_service()
    plan = week_plan()
    report = asyncio.run(service.sync_meal_plan(plan))
    assert report.ok and len(report.outcomes) == 21
    assert {o.action for o in report.outcomes} == {SyncAction.CREATED}
    events = calendar_server.events()
    assert len(events) == 21 == calendar_server.writes()
    lunch = calendar_server.event(event_id("week-1", "d2-lunch"))
    assert lunch is not None
    assert lunch is not None
    assert lunch["summary"] == "Lentil soup"
    assert lunch["colorId"] == "10"
    assert lunch["description"] == "Ingredients:\nlentils\ncarrot\n\nbatch cook"
    assert lunch["start"] == {"dateTime": "2024-12-18T12:30:00", "timeZone": "UTC"}
    assert lunch["end"]["dateTime"] == "2024-12-18T13:15:00"
    assert lunch["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "popup", "minutes": 30}],
    }
    assert lunch["extendedProperties"]["private"]["flagopsPlanId"] == "week-1"
    assert lunch["extendedProperties"]["private"]["flagopsMealId"] == "d2-lunch"
    dinner = calendar_server.event(event_id("week-1", "d6-dinner"))
    assert dinner is not None
    assert dinner["start"]["dateTime"] == "2024-12-22T18:30:00"
    assert dinner["end"]["dateTime"] == "2024-12-22T19:20:00"
    statuses = asyncio.run(service.get_sync_status([o.meal_id for o in report.outcomes]))
    assert {s.state for s in statuses.values()} == {SyncState.SYNCED}
    assert sample(metrics, "success") == 21 + 21


def test_resync_with_one_meal_changed_writes_once(
    make_service: Callable[..., CalendarSyncIntegration],
    calendar_server: CalendarServer,
    week_plan: Callable[..., dict[str, Any]],
) -> None:
    service = make_service()
    plan = week_plan()
    asyncio.run(service.sync_meal_plan(plan))
    changed = copy.deepcopy(plan)
    changed["days"][3]["meals"][2]["name"] = "Vegetable curry"
    calendar_server.reset_log()
    report = asyncio.run(service.sync_meal_plan(changed))
    assert calendar_server.writes() == 1
    assert calendar_server.count("events.patch", status=200) == 1
    actions = [o.action for o in report.outcomes]
    assert actions.count(SyncAction.UPDATED) == 1 and actions.count(SyncAction.UNCHANGED) == 20
    curry = calendar_server.event(event_id("week-1", "d3-dinner"))
    assert curry is not None and curry["summary"] == "Vegetable curry"
    # Same again: nothing to write at all.
    calendar_server.reset_log()
    asyncio.run(service.sync_meal_plan(changed))
    assert calendar_server.writes() == 0


def test_changed_options_rewrite_events(
    make_service: Callable[..., CalendarSyncIntegration], calendar_server: CalendarServer
) -> None:
    service = make_service()
    asyncio.run(service.sync_meal_plan(PLAN3))
    calendar_server.reset_log()
    report = asyncio.run(service.sync_meal_plan(PLAN3, reminder_minutes=5))
    assert [o.action for o in report.outcomes] == [SyncAction.UPDATED] * 3
    event = calendar_server.event(event_id("plan-3", "a"))
    assert event is not None
    assert event["reminders"]["overrides"] == [{"method": "popup", "minutes": 5}]


def test_deleted_remotely_is_reported_and_recreated(
    make_service: Callable[..., CalendarSyncIntegration], calendar_server: CalendarServer
) -> None:
    service = make_service()
    asyncio.run(service.sync_meal_plan(PLAN3))
    calendar_server.delete_event(event_id("plan-3", "a"))  # cancelled, as the UI does
    calendar_server.purge_event(event_id("plan-3", "b"))  # gone entirely: 404
    calendar_server.edit_event(event_id("plan-3", "c"), summary="Pizza instead")
    status = asyncio.run(service.get_sync_status(["a", "b", "c"]))
    assert status["a"].state is SyncState.DELETED_REMOTELY
    assert status["b"].state is SyncState.DELETED_REMOTELY
    assert status["c"].state is SyncState.MODIFIED_REMOTELY
    # A fresh process knows nothing locally: the cancelled event is still evidence;
    # the purged one reads as pending (never synced, as far as anyone can tell).
    fresh = asyncio.run(fresh_status(make_service, ["a", "b", "c"], "plan-3"))
    assert fresh == {
        "a": SyncState.DELETED_REMOTELY,
        "b": SyncState.PENDING,
        "c": SyncState.MODIFIED_REMOTELY,
    }
    report = asyncio.run(service.sync_meal_plan(PLAN3))
    assert [o.action for o in report.outcomes] == [
        SyncAction.REVIVED,
        SyncAction.CREATED,
        SyncAction.UNCHANGED,  # the user's edit is kept until the plan itself changes
    ]
    assert {e["id"] for e in calendar_server.events()} == {
        event_id("plan-3", m) for m in ("a", "b", "c")
    }
    revived = calendar_server.event(event_id("plan-3", "a"))
    assert revived is not None
    assert revived["status"] == "confirmed"
    status = asyncio.run(service.get_sync_status(["a", "b"]))
    assert {s.state for s in status.values()} == {SyncState.SYNCED}


async def fresh_status(
    make_service: Callable[..., CalendarSyncIntegration], meal_ids: list[str], plan_id: str | None
) -> dict[str, SyncState]:
    service = await asyncio.to_thread(make_service)
    result = await service.get_sync_status(meal_ids, plan_id=plan_id)
    return {k: v.state for k, v in result.items()}


def test_status_without_plan_id_finds_events_by_private_property(
    make_service: Callable[..., CalendarSyncIntegration], calendar_server: CalendarServer
) -> None:
    service = make_service()
    asyncio.run(service.sync_meal_plan(PLAN3))
    other = make_service()  # no local record: must list by flagopsMealId
    calendar_server.reset_log()
    status = asyncio.run(other.get_sync_status(["a", "zzz"]))
    assert status["a"].state is SyncState.SYNCED
    assert status["zzz"].state is SyncState.PENDING
    lists = [r for r in calendar_server.requests if r.route == "events.list"]
    assert lists and lists[0].query["privateExtendedProperty"] == ["flagopsMealId=a"]
    assert lists[0].query["showDeleted"] == ["true"]


def test_unsync_meal(
    make_service: Callable[..., CalendarSyncIntegration], calendar_server: CalendarServer
) -> None:
    service = make_service()
    asyncio.run(service.sync_meal_plan(PLAN3))
    removed = asyncio.run(service.unsync_meal("a"))
    assert removed.deleted == [event_id("plan-3", "a")]
    again = asyncio.run(service.unsync_meal("a", plan_id="plan-3"))
    assert again.already_gone == [event_id("plan-3", "a")]  # 410 on delete: fine
    calendar_server.script("events.delete", Fault.gone())
    assert asyncio.run(service.unsync_meal("b", plan_id="plan-3")).already_gone
    assert len(calendar_server.events()) == 2
    # Without plan id or record: every plan's event for that meal id is found and deleted.
    other = make_service()
    gone = asyncio.run(other.unsync_meal("c"))
    assert gone.deleted == [event_id("plan-3", "c")]


def test_burst_of_429_is_retried_by_the_library(
    make_service: Callable[..., CalendarSyncIntegration], calendar_server: CalendarServer
) -> None:
    service = make_service()
    calendar_server.script(
        "events.insert",
        Fault.too_many_requests(0),
        Fault.too_many_requests(0),
        Fault.rate_limit("userRateLimitExceeded"),
    )
    report = asyncio.run(service.sync_meal_plan(PLAN3))
    assert report.ok
    assert calendar_server.count("events.insert", status=429) == 2
    assert calendar_server.count("events.insert", status=403) == 1
    assert len(calendar_server.events()) == 3
    assert service.status is IntegrationStatus.CONNECTED


def test_429_beyond_retries_rate_limits_then_ends_synced(
    make_service: Callable[..., CalendarSyncIntegration],
    calendar_server: CalendarServer,
    metrics: IntegrationMetrics,
) -> None:
    service = make_service(num_retries=2)
    calendar_server.script("events.insert", *[Fault.too_many_requests(1)] * 3)
    before = time.time()
    report = asyncio.run(service.sync_meal_plan(PLAN3))
    assert [o.action for o in report.outcomes] == [SyncAction.RATE_LIMITED] * 3
    assert service.status is IntegrationStatus.RATE_LIMITED
    assert report.retry_at is not None
    assert before + 0.9 <= report.retry_at.timestamp() <= time.time() + 1.1  # Retry-After: 1
    assert calendar_server.count("events.insert") == 3  # one call + 2 library retries, then stop
    assert sample(metrics, "rate_limited") == 3
    # Before the retry time another attempt makes no call at all.
    calendar_server.reset_log()
    asyncio.run(service.sync_meal_plan(PLAN3))
    assert calendar_server.requests == []
    retry_at = service.retry_at
    assert retry_at is not None
    wait_for(lambda: datetime.now(UTC) >= retry_at, timeout=5, message="retry time passed")
    report = asyncio.run(service.sync_meal_plan(PLAN3))
    assert report.ok
    # The status changed under mypy's narrowing from the assertion above.
    assert service.status is IntegrationStatus.CONNECTED  # type: ignore[comparison-overlap]
    ids = [e["id"] for e in calendar_server.events(include_cancelled=True)]
    assert sorted(ids) == sorted({event_id("plan-3", m) for m in "abc"})  # no duplicates


def test_insert_that_landed_but_lost_its_reply_is_not_duplicated(
    make_service: Callable[..., CalendarSyncIntegration], calendar_server: CalendarServer
) -> None:
    service = make_service()
    # The insert is stored, the reply is a 503; the library retries and gets 409.
    calendar_server.script("events.insert", Fault.server_error(503, apply=True))
    outcome = asyncio.run(
        service.sync_meal("2024-12-18", {"id": "x", "type": "lunch", "name": "Soup"})
    )
    assert outcome.action is SyncAction.UPDATED
    assert calendar_server.count("events.insert", status=409) == 1
    assert calendar_server.count("events.update", status=200) == 1
    assert len(calendar_server.events()) == 1


def test_quota_exceeded_is_not_retried_in_a_loop(
    make_service: Callable[..., CalendarSyncIntegration],
    calendar_server: CalendarServer,
    metrics: IntegrationMetrics,
) -> None:
    service = make_service()
    calendar_server.script("events.get", *[Fault.quota_exceeded()] * 5)
    report = asyncio.run(service.sync_meal_plan(PLAN3))
    assert [o.action for o in report.outcomes] == [
        SyncAction.FAILED,
        SyncAction.SKIPPED,
        SyncAction.SKIPPED,
    ]
    assert "quotaExceeded" in (report.outcomes[0].error or "")
    assert calendar_server.count("events.get") == 1
    assert calendar_server.writes() == 0
    assert service.status is IntegrationStatus.CONNECTED
    assert sample(metrics, "error") == 1 and sample(metrics, "rate_limited") == 0


def test_server_error_fails_one_meal_and_reports_each(
    make_service: Callable[..., CalendarSyncIntegration], calendar_server: CalendarServer
) -> None:
    service = make_service(num_retries=1)
    calendar_server.script("events.get", Fault.server_error(), Fault.server_error())
    report = asyncio.run(service.sync_meal_plan(PLAN3))
    by_meal = report.by_meal()
    assert by_meal["a"].action is SyncAction.FAILED and "HTTP 500" in (by_meal["a"].error or "")
    assert by_meal["b"].action is SyncAction.CREATED
    assert by_meal["c"].action is SyncAction.CREATED
    assert not report.ok
    status = asyncio.run(service.get_sync_status(["a"], plan_id="plan-3"))
    assert status["a"].state is SyncState.PENDING


def test_expired_token_is_refreshed(
    make_service: Callable[..., CalendarSyncIntegration], calendar_server: CalendarServer
) -> None:
    service = make_service()
    asyncio.run(service.sync_meal_plan(PLAN3))
    assert calendar_server.count("token") == 1
    calendar_server.expire_tokens()
    calendar_server.script("calendarList.get", Fault.unauthorized())
    report = asyncio.run(service.sync_meal_plan(PLAN3))
    assert report.ok
    assert calendar_server.count("token", status=200) == 2
    assert calendar_server.count("events.get", status=401) == 1
    assert asyncio.run(service.health_check()).healthy  # scripted 401 -> refresh -> ok
    assert calendar_server.count("token", status=200) == 3


def test_authorized_user_refresh_token_with_token_uri_override(
    make_service: Callable[..., CalendarSyncIntegration],
    calendar_server: CalendarServer,
    authorized_user_file: Path,
) -> None:
    # The file names Google's token endpoint; only the override reaches the local server.
    service = make_service(credentials_file=str(authorized_user_file))
    assert service.status is IntegrationStatus.CONNECTED
    grants = [r.grant_type for r in calendar_server.requests if r.route == "token"]
    assert grants == ["refresh_token"]
    assert asyncio.run(service.sync_meal_plan(PLAN3)).ok


def test_token_endpoint_rejection_fails_connect(
    make_service: Callable[..., CalendarSyncIntegration], calendar_server: CalendarServer
) -> None:
    calendar_server.script("token", Fault.token_error(400, "invalid_grant"))
    service = make_service(connect=False)
    with pytest.raises(IntegrationConnectionError, match="invalid_grant"):
        asyncio.run(service.connect())
    assert service.status is IntegrationStatus.ERROR
    assert calendar_server.count("calendarList.get") == 0


def test_flag_off_keeps_service_disabled_but_health_works(
    make_service: Callable[..., CalendarSyncIntegration],
    calendar_server: CalendarServer,
    set_flag: Callable[[bool], None],
) -> None:
    set_flag(False)
    service = make_service(connect=False)
    assert asyncio.run(service.connect()) is IntegrationStatus.DISABLED
    assert calendar_server.count("calendarList.get") == 0
    assert asyncio.run(service.health_check()).healthy
    set_flag(True)
    assert service.flags.reload()  # type: ignore[attr-defined]
    assert asyncio.run(service.connect()) is IntegrationStatus.CONNECTED
