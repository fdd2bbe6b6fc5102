"""CalendarSyncIntegration: meal plans to Google Calendar, idempotently."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date as Date
from typing import Any

from pydantic import ValidationError

from flagops.integrations.calendar.backend import (
    CalendarApiError,
    CalendarBackend,
    MockCalendarBackend,
)
from flagops.integrations.calendar.models import (
    MEAL_ID_PROPERTY,
    EventOptions,
    Meal,
    MealPlan,
    content_hash,
    event_body,
    event_id,
    remote_content,
    stored_hash,
)
from flagops.integrations.calendar.options import CalendarOptions
from flagops.integrations.calendar.results import (
    MealSyncOutcome,
    MealSyncStatus,
    SyncAction,
    SyncReport,
    SyncState,
    UnsyncResult,
)
from flagops.integrations.errors import (
    ClassifiedError,
    ErrorKind,
    IntegrationConfigError,
    IntegrationDisabledError,
    IntegrationError,
    IntegrationNotConnectedError,
    IntegrationQuotaError,
    IntegrationRateLimitedError,
)
from flagops.integrations.flagsource import FlagSource
from flagops.integrations.metrics import IntegrationMetrics
from flagops.integrations.service import IntegrationService

INTEGRATION_NAME = "calendar_sync"
FLAG_NAME = "calendar_sync"
STANDALONE_PLAN_ID = "standalone"


@dataclass
class _SyncRecord:
    """What this process last wrote (or tried to write) for a meal.

    It is how `get_sync_status` tells "deleted remotely" from "never synced"
    when the event has been purged (404/410); a cancelled event carrying our
    private properties is evidence enough on its own.
    """

    plan_id: str
    event_id: str
    desired_hash: str
    synced: bool


class CalendarSyncIntegration(IntegrationService):
    def __init__(
        self,
        *,
        flags: FlagSource | None = None,
        metrics: IntegrationMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(INTEGRATION_NAME, FLAG_NAME, flags=flags, metrics=metrics, clock=clock)
        self._options = CalendarOptions(mock_mode=True)
        self._backend: CalendarBackend | None = None
        self._records: dict[str, _SyncRecord] = {}

    @property
    def options(self) -> CalendarOptions:
        return self._options

    @property
    def mock_mode(self) -> bool:
        return self._options.mock_mode

    # ----- hooks -------------------------------------------------------------------

    async def _init(self, config: Mapping[str, Any]) -> None:
        try:
            self._options = CalendarOptions.model_validate(dict(config))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}"
                for e in exc.errors()
            )
            raise IntegrationConfigError(
                self.redactor.redact_text(f"{self.name}: invalid config: {problems}"),
                integration=self.name,
            ) from None

    def _new_backend(self) -> CalendarBackend:
        opts = self._options
        if opts.mock_mode:
            return MockCalendarBackend(self.logger)
        # Imported here: apps using only mock mode need not install the [calendar] extra.
        from flagops.integrations.calendar.google_backend import (
            GoogleCalendarBackend,
            load_credentials,
        )

        assert opts.credentials_file is not None  # checked by CalendarOptions
        credentials = load_credentials(
            opts.credentials_file,
            token_uri=opts.token_uri,
            redactor=self.redactor,
            subject=opts.delegated_user,
        )
        return GoogleCalendarBackend(
            credentials,
            api_endpoint=opts.api_endpoint,
            num_retries=opts.num_retries,
            timeout=opts.request_timeout,
            retry_backoff_scale=opts.retry_backoff_scale,
        )

    async def _connect(self) -> None:
        backend = await asyncio.to_thread(self._new_backend)
        try:
            await asyncio.to_thread(backend.calendar_get, self._options.calendar_id)
        except BaseException:
            await asyncio.to_thread(backend.close)
            raise
        self._backend = backend
        self.log(
            logging.INFO,
            "connected to calendar %s (mock=%s)",
            self._options.calendar_id,
            self.mock_mode,
        )

    async def _disconnect(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            await asyncio.to_thread(backend.close)

    async def _health_check(self) -> str:
        backend = self._backend
        temporary = backend is None
        if backend is None:
            backend = await asyncio.to_thread(self._new_backend)
        try:
            entry = await asyncio.to_thread(backend.calendar_get, self._options.calendar_id)
        finally:
            if temporary:
                await asyncio.to_thread(backend.close)
        return f"calendar {entry.get('id', self._options.calendar_id)} reachable"

    def _classify_error(self, exc: BaseException) -> ClassifiedError:
        if isinstance(exc, CalendarApiError):
            if exc.rate_limited:
                kind = ErrorKind.RATE_LIMITED
            elif exc.quota_exceeded:
                kind = ErrorKind.QUOTA
            else:
                kind = ErrorKind.ERROR
            return ClassifiedError(kind, exc.status_code, exc.reason or None, exc.retry_after)
        return super()._classify_error(exc)

    # ----- operations --------------------------------------------------------------

    def _require_backend(self) -> CalendarBackend:
        if self._backend is None:
            raise IntegrationNotConnectedError(f"{self.name}: not connected", integration=self.name)
        return self._backend

    def _check_ready(self) -> None:
        """Refuse a whole plan up front rather than failing it meal by meal."""
        if not self.is_flag_enabled():
            raise IntegrationDisabledError(
                f"{self.name}: flag {self.flag_name} is off", integration=self.name
            )
        self._require_backend()

    async def sync_meal_plan(
        self,
        plan: MealPlan | Mapping[str, Any],
        create_reminders: bool = True,
        reminder_minutes: int = 30,
        include_ingredients: bool = True,
    ) -> SyncReport:
        """Sync every meal; the report has one outcome per meal, in plan order.

        The plan is validated first (pydantic ValidationError naming the field),
        so a bad plan writes nothing. Once rate limited, the remaining meals are
        reported `rate_limited` without calls; after a quota error they are
        reported `skipped`.
        """
        model = plan if isinstance(plan, MealPlan) else MealPlan.model_validate(plan)
        options = self._event_options(create_reminders, reminder_minutes, include_ingredients)
        self._check_ready()
        outcomes: list[MealSyncOutcome] = []
        stop_reason: str | None = None
        retry_at = None
        for day, meal in model.meals():
            eid = event_id(model.id, meal.id)
            if stop_reason is not None:
                outcomes.append(
                    MealSyncOutcome(meal.id, day.isoformat(), eid, SyncAction.SKIPPED, stop_reason)
                )
                continue
            try:
                outcomes.append(await self._sync(model.id, day, meal, options))
            except IntegrationRateLimitedError as exc:
                retry_at = exc.retry_at
                outcomes.append(
                    MealSyncOutcome(
                        meal.id, day.isoformat(), eid, SyncAction.RATE_LIMITED, str(exc)
                    )
                )
            except (
                IntegrationQuotaError,
                IntegrationDisabledError,
                IntegrationNotConnectedError,
            ) as exc:
                outcomes.append(
                    MealSyncOutcome(meal.id, day.isoformat(), eid, SyncAction.FAILED, str(exc))
                )
                stop_reason = f"not attempted after: {exc}"
            except IntegrationError as exc:
                outcomes.append(
                    MealSyncOutcome(meal.id, day.isoformat(), eid, SyncAction.FAILED, str(exc))
                )
        report = SyncReport(model.id, outcomes, retry_at)
        self.log(
            logging.INFO,
            "plan %s: %d meals, %d written, %d not synced",
            model.id,
            len(outcomes),
            report.writes,
            sum(not o.ok for o in outcomes),
        )
        return report

    async def sync_meal(
        self,
        date: Date | str,
        meal: Meal | Mapping[str, Any],
        create_reminders: bool = True,
        reminder_minutes: int = 30,
        include_ingredients: bool = True,
        *,
        plan_id: str = STANDALONE_PLAN_ID,
    ) -> MealSyncOutcome:
        """Sync one meal (raises IntegrationError on failure)."""
        day = date if isinstance(date, Date) else Date.fromisoformat(date)
        model = meal if isinstance(meal, Meal) else Meal.model_validate(meal)
        options = self._event_options(create_reminders, reminder_minutes, include_ingredients)
        return await self._sync(plan_id, day, model, options)

    def _event_options(
        self, create_reminders: bool, reminder_minutes: int, include_ingredients: bool
    ) -> EventOptions:
        return EventOptions(
            create_reminders=create_reminders,
            reminder_minutes=reminder_minutes,
            include_ingredients=include_ingredients,
            time_zone=self._options.time_zone,
        )

    async def _sync(
        self, plan_id: str, day: Date, meal: Meal, options: EventOptions
    ) -> MealSyncOutcome:
        body = event_body(plan_id, day, meal, options)
        eid = body["id"]
        desired = body["extendedProperties"]["private"]["flagopsContentHash"]
        record = self._records.get(meal.id)
        synced_before = record is not None and record.synced and record.event_id == eid
        self._records[meal.id] = _SyncRecord(plan_id, eid, desired, synced_before)
        action, event = await self.execute(
            lambda: asyncio.to_thread(self._write_event, body), operation="sync_meal"
        )
        self._records[meal.id] = _SyncRecord(plan_id, eid, desired, True)
        self.log(logging.DEBUG, "meal %s (%s): %s event %s", meal.id, day, action.value, eid)
        return MealSyncOutcome(
            meal.id, day.isoformat(), eid, action, html_link=event.get("htmlLink")
        )

    def _write_event(self, body: dict[str, Any]) -> tuple[SyncAction, dict[str, Any]]:
        """get -> insert (404/410) | revive (cancelled) | patch (changed) | nothing."""
        backend = self._require_backend()
        calendar = self._options.calendar_id
        eid = body["id"]
        try:
            existing: dict[str, Any] | None = backend.get(calendar, eid)
        except CalendarApiError as exc:
            if not exc.gone:
                raise
            existing = None
        if existing is None:
            try:
                return SyncAction.CREATED, backend.insert(calendar, body)
            except CalendarApiError as exc:
                # The id exists after all (a retried insert that had landed, or a
                # purge race): overwrite it rather than create a duplicate.
                if exc.status_code != 409:
                    raise
                return SyncAction.UPDATED, backend.update(calendar, eid, body)
        if existing.get("status") == "cancelled":
            return SyncAction.REVIVED, backend.patch(calendar, eid, body)
        if stored_hash(existing) == body["extendedProperties"]["private"]["flagopsContentHash"]:
            return SyncAction.UNCHANGED, existing
        return SyncAction.UPDATED, backend.patch(calendar, eid, body)

    async def unsync_meal(self, meal_id: str, plan_id: str | None = None) -> UnsyncResult:
        """Delete the meal's event (of `plan_id`, else every plan's); gone already is fine."""
        record = self._records.get(meal_id)

        def run() -> UnsyncResult:
            backend = self._require_backend()
            calendar = self._options.calendar_id
            if plan_id is not None:
                ids = [event_id(plan_id, meal_id)]
            elif record is not None:
                ids = [record.event_id]
            else:
                ids = [
                    str(e["id"])
                    for e in backend.list_by_private(
                        calendar, MEAL_ID_PROPERTY, meal_id, show_deleted=False
                    )
                ]
            result = UnsyncResult(meal_id)
            for eid in ids:
                try:
                    backend.delete(calendar, eid)
                    result.deleted.append(eid)
                except CalendarApiError as exc:
                    if not exc.gone:
                        raise
                    result.already_gone.append(eid)
            return result

        result = await self.execute(lambda: asyncio.to_thread(run), operation="unsync_meal")
        self._records.pop(meal_id, None)
        return result

    async def get_sync_status(
        self, meal_ids: list[str] | tuple[str, ...], plan_id: str | None = None
    ) -> dict[str, MealSyncStatus]:
        """Per meal: synced, pending, modified_remotely, deleted_remotely or error."""
        statuses: dict[str, MealSyncStatus] = {}
        for meal_id in meal_ids:
            try:
                statuses[meal_id] = await self.execute(
                    lambda m=meal_id: asyncio.to_thread(self._status_of, m, plan_id),  # type: ignore[misc]
                    operation="get_sync_status",
                )
            except IntegrationError as exc:
                statuses[meal_id] = MealSyncStatus(meal_id, SyncState.ERROR, detail=str(exc))
        return statuses

    def _status_of(self, meal_id: str, plan_id: str | None) -> MealSyncStatus:
        backend = self._require_backend()
        calendar = self._options.calendar_id
        record = self._records.get(meal_id)
        if plan_id is not None:
            eid: str | None = event_id(plan_id, meal_id)
        else:
            eid = record.event_id if record else None
        if eid is None:
            events = backend.list_by_private(calendar, MEAL_ID_PROPERTY, meal_id, show_deleted=True)
            if not events:
                return MealSyncStatus(meal_id, SyncState.PENDING, detail="no event found")
            # Several plans may hold the meal: a live event beats a cancelled one.
            event = max(
                events, key=lambda e: (e.get("status") != "cancelled", str(e.get("updated", "")))
            )
        else:
            try:
                event = backend.get(calendar, eid)
            except CalendarApiError as exc:
                if not exc.gone:
                    raise
                had_synced = record is not None and record.synced and record.event_id == eid
                state = SyncState.DELETED_REMOTELY if had_synced else SyncState.PENDING
                return MealSyncStatus(
                    meal_id, state, eid, f"event not found (HTTP {exc.status_code})"
                )
        eid = str(event.get("id", eid))
        if event.get("status") == "cancelled":
            return MealSyncStatus(meal_id, SyncState.DELETED_REMOTELY, eid, "event cancelled")
        stored = stored_hash(event)
        if stored is None or content_hash(remote_content(event)) != stored:
            return MealSyncStatus(
                meal_id, SyncState.MODIFIED_REMOTELY, eid, "event edited outside flagops"
            )
        if record is not None and record.event_id == eid and record.desired_hash != stored:
            return MealSyncStatus(meal_id, SyncState.PENDING, eid, "local change not yet synced")
        return MealSyncStatus(meal_id, SyncState.SYNCED, eid)
