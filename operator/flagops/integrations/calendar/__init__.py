"""Calendar sync: meal plans to Google Calendar (entry point `calendar_sync`)."""

from flagops.integrations.calendar.backend import CalendarApiError, MockCalendarBackend
from flagops.integrations.calendar.models import (
    COLOR_BY_TYPE,
    MEAL_DEFAULTS,
    Meal,
    MealDay,
    MealPlan,
    event_id,
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
from flagops.integrations.calendar.service import CalendarSyncIntegration

__all__ = [
    "COLOR_BY_TYPE",
    "MEAL_DEFAULTS",
    "CalendarApiError",
    "CalendarOptions",
    "CalendarSyncIntegration",
    "Meal",
    "MealDay",
    "MealPlan",
    "MealSyncOutcome",
    "MealSyncStatus",
    "MockCalendarBackend",
    "SyncAction",
    "SyncReport",
    "SyncState",
    "UnsyncResult",
    "event_id",
]
