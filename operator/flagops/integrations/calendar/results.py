"""What sync and status calls report, per meal."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class SyncAction(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    REVIVED = "revived"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    RATE_LIMITED = "rate_limited"
    SKIPPED = "skipped"


class SyncState(StrEnum):
    SYNCED = "synced"
    PENDING = "pending"
    MODIFIED_REMOTELY = "modified_remotely"
    DELETED_REMOTELY = "deleted_remotely"
    ERROR = "error"


_OK = frozenset({SyncAction.CREATED, SyncAction.UPDATED, SyncAction.REVIVED, SyncAction.UNCHANGED})


@dataclass(frozen=True)
class MealSyncOutcome:
    meal_id: str
    date: str
    event_id: str
    action: SyncAction
    error: str | None = None
    html_link: str | None = None

    @property
    def ok(self) -> bool:
        return self.action in _OK


@dataclass(frozen=True)
class SyncReport:
    plan_id: str
    outcomes: list[MealSyncOutcome] = field(default_factory=list)
    retry_at: datetime | None = None

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def writes(self) -> int:
        return sum(
            o.action in (SyncAction.CREATED, SyncAction.UPDATED, SyncAction.REVIVED)
            for o in self.outcomes
        )

    def by_meal(self) -> dict[str, MealSyncOutcome]:
        return {o.meal_id: o for o in self.outcomes}


@dataclass(frozen=True)
class MealSyncStatus:
    meal_id: str
    state: SyncState
    event_id: str | None = None
    detail: str | None = None


@dataclass(frozen=True)
class UnsyncResult:
    meal_id: str
    deleted: list[str] = field(default_factory=list)
    already_gone: list[str] = field(default_factory=list)
