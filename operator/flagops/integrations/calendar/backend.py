"""The Calendar operations the sync needs, behind one small interface.

Two implementations: `GoogleCalendarBackend` (google-api-python-client, in
`google_backend.py`) and `MockCalendarBackend` (in memory, offline, for
`mock_mode`). Both raise `CalendarApiError`, so the sync logic never sees a
library exception. Calls are synchronous; the service runs them in a thread.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})


class CalendarApiError(Exception):
    """A failed Calendar call, reduced to what the sync needs (no bodies, no headers)."""

    def __init__(
        self,
        status_code: int | None,
        reason: str = "",
        message: str = "",
        *,
        retry_after: float | None = None,
    ) -> None:
        self.status_code = status_code
        self.reason = reason
        self.retry_after = retry_after
        text = f"HTTP {status_code}" if status_code is not None else "request failed"
        if reason:
            text += f" {reason}"
        if message:
            text += f": {message}"
        super().__init__(text)

    @property
    def rate_limited(self) -> bool:
        return self.status_code == 429 or (
            self.status_code == 403 and self.reason in RATE_LIMIT_REASONS
        )

    @property
    def quota_exceeded(self) -> bool:
        return self.status_code == 403 and self.reason in QUOTA_REASONS

    @property
    def gone(self) -> bool:
        return self.status_code in (404, 410)


class CalendarBackend(Protocol):
    def calendar_get(self, calendar_id: str) -> dict[str, Any]: ...

    def get(self, calendar_id: str, event_id: str) -> dict[str, Any]: ...

    def insert(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def patch(self, calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def delete(self, calendar_id: str, event_id: str) -> None: ...

    def list_by_private(
        self, calendar_id: str, key: str, value: str, *, show_deleted: bool
    ) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class MockCalendarBackend:
    """Offline stand-in for `mock_mode=True`: events live in memory, every call is logged."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._events: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._log = logger or logging.getLogger("flagops.integrations.calendar.mock")

    def _record(self, operation: str, calendar_id: str, event_id: str = "") -> None:
        self._log.info("[mock] %s calendar=%s event=%s", operation, calendar_id, event_id)

    def calendar_get(self, calendar_id: str) -> dict[str, Any]:
        self._record("calendarList.get", calendar_id)
        return {"id": calendar_id, "summary": "mock calendar", "timeZone": "UTC"}

    def get(self, calendar_id: str, event_id: str) -> dict[str, Any]:
        self._record("events.get", calendar_id, event_id)
        with self._lock:
            event = self._events.get((calendar_id, event_id))
            if event is None:
                raise CalendarApiError(404, "notFound", "Not Found")
            return copy.deepcopy(event)

    def insert(self, calendar_id: str, body: dict[str, Any]) -> dict[str, Any]:
        event_id = str(body["id"])
        self._record("events.insert", calendar_id, event_id)
        with self._lock:
            if (calendar_id, event_id) in self._events:
                raise CalendarApiError(409, "duplicate", "The requested identifier already exists.")
            event = copy.deepcopy(body)
            event.update(
                status="confirmed",
                created=_now(),
                updated=_now(),
                htmlLink=f"mock://calendar/{calendar_id}/event/{event_id}",
            )
            self._events[(calendar_id, event_id)] = event
            return copy.deepcopy(event)

    def patch(self, calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._record("events.patch", calendar_id, event_id)
        with self._lock:
            event = self._events.get((calendar_id, event_id))
            if event is None:
                raise CalendarApiError(404, "notFound", "Not Found")
            _merge(event, copy.deepcopy(body))
            event["updated"] = _now()
            return copy.deepcopy(event)

    def update(self, calendar_id: str, event_id: str, body: dict[str, Any]) -> dict[str, Any]:
        self._record("events.update", calendar_id, event_id)
        with self._lock:
            old = self._events.get((calendar_id, event_id))
            if old is None:
                raise CalendarApiError(404, "notFound", "Not Found")
            event = copy.deepcopy(body)
            event.update(
                id=event_id, created=old["created"], updated=_now(), htmlLink=old["htmlLink"]
            )
            event.setdefault("status", "confirmed")
            self._events[(calendar_id, event_id)] = event
            return copy.deepcopy(event)

    def delete(self, calendar_id: str, event_id: str) -> None:
        self._record("events.delete", calendar_id, event_id)
        with self._lock:
            event = self._events.get((calendar_id, event_id))
            if event is None:
                raise CalendarApiError(404, "notFound", "Not Found")
            if event.get("status") == "cancelled":
                raise CalendarApiError(410, "deleted", "Resource has been deleted")
            event["status"] = "cancelled"
            event["updated"] = _now()

    def list_by_private(
        self, calendar_id: str, key: str, value: str, *, show_deleted: bool
    ) -> list[dict[str, Any]]:
        self._record("events.list", calendar_id, f"{key}={value}")
        with self._lock:
            return [
                copy.deepcopy(e)
                for (cal, _), e in self._events.items()
                if cal == calendar_id
                and ((e.get("extendedProperties") or {}).get("private") or {}).get(key) == value
                and (show_deleted or e.get("status") != "cancelled")
            ]

    def close(self) -> None:
        """Nothing to release."""


def _merge(target: dict[str, Any], patch: Mapping[str, Any]) -> None:
    """Calendar patch semantics: objects merge, everything else is replaced."""
    for key, value in patch.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = value
