"""The meal plan (validated input) and how a meal becomes a Calendar event."""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, time, timedelta
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# (default start, default duration in minutes) per meal type; docs/integrations.md lists them.
MEAL_DEFAULTS: dict[str, tuple[str, int]] = {
    "breakfast": ("08:00", 30),
    "lunch": ("12:30", 45),
    "dinner": ("19:00", 60),
    "snack": ("15:30", 15),
}
OTHER_DEFAULT: tuple[str, int] = ("12:00", 30)

COLOR_BY_TYPE: dict[str, str] = {"breakfast": "5", "lunch": "10", "dinner": "9", "snack": "6"}
OTHER_COLOR = "8"

PLAN_ID_PROPERTY = "flagopsPlanId"
MEAL_ID_PROPERTY = "flagopsMealId"
HASH_PROPERTY = "flagopsContentHash"


class Meal(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1)
    type: str = "other"
    name: str = Field(min_length=1)
    time: str | None = None
    duration_minutes: int | None = Field(default=None, alias="durationMinutes", ge=1, le=24 * 60)
    ingredients: list[str] = Field(default_factory=list)
    notes: str = ""

    @field_validator("type")
    @classmethod
    def _lower_type(cls, value: str) -> str:
        return value.strip().lower() or "other"

    @field_validator("time")
    @classmethod
    def _valid_time(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            parsed = time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"time must be HH:MM (24-hour), got {value!r}") from None
        return parsed.strftime("%H:%M")

    @property
    def start_time(self) -> str:
        return self.time or MEAL_DEFAULTS.get(self.type, OTHER_DEFAULT)[0]

    @property
    def minutes(self) -> int:
        if self.duration_minutes is not None:
            return self.duration_minutes
        return MEAL_DEFAULTS.get(self.type, OTHER_DEFAULT)[1]


class MealDay(BaseModel):
    model_config = ConfigDict(extra="ignore")

    date: date
    meals: list[Meal] = Field(default_factory=list)


class MealPlan(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    id: str = Field(min_length=1)
    days: list[MealDay] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_meal_ids(self) -> Self:
        seen: dict[str, str] = {}
        for d, day in enumerate(self.days):
            for m, meal in enumerate(day.meals):
                where = f"days.{d}.meals.{m}.id"
                if meal.id in seen:
                    raise ValueError(
                        f"{where}: duplicate meal id {meal.id!r} (first at {seen[meal.id]})"
                    )
                seen[meal.id] = where
        return self

    def meals(self) -> list[tuple[date, Meal]]:
        return [(day.date, meal) for day in self.days for meal in day.meals]


class EventOptions(BaseModel):
    """How events are written; part of the content hash, so changing them re-syncs."""

    create_reminders: bool = True
    reminder_minutes: int = Field(default=30, ge=0, le=40320)
    include_ingredients: bool = True
    time_zone: str = "UTC"


def event_id(plan_id: str, meal_id: str) -> str:
    """SHA-1 hex: only 0-9a-f, 40 characters, a valid Calendar event id."""
    return hashlib.sha1(f"{plan_id}:{meal_id}".encode()).hexdigest()  # noqa: S324 - an id, not security


def _description(meal: Meal, options: EventOptions) -> str:
    parts: list[str] = []
    if options.include_ingredients and meal.ingredients:
        parts.append("Ingredients:\n" + "\n".join(meal.ingredients))
    if meal.notes:
        parts.append(meal.notes)
    return "\n\n".join(parts)


def event_content(day: date, meal: Meal, options: EventOptions) -> dict[str, Any]:
    """The fields we own on the event; their hash tells "changed" from "unchanged"."""
    start = datetime.combine(day, time.fromisoformat(meal.start_time))
    end = start + timedelta(minutes=meal.minutes)
    content: dict[str, Any] = {
        "summary": meal.name,
        "description": _description(meal, options),
        "start": {"dateTime": start.isoformat(timespec="seconds"), "timeZone": options.time_zone},
        "end": {"dateTime": end.isoformat(timespec="seconds"), "timeZone": options.time_zone},
        "colorId": COLOR_BY_TYPE.get(meal.type, OTHER_COLOR),
        "reminders": (
            {
                "useDefault": False,
                "overrides": [{"method": "popup", "minutes": options.reminder_minutes}],
            }
            if options.create_reminders
            else {"useDefault": False}
        ),
    }
    return content


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def remote_content(event: dict[str, Any]) -> dict[str, Any]:
    """The same fields, read back from a Calendar event, normalised for hashing."""

    def when(value: Any) -> dict[str, Any]:
        value = value if isinstance(value, dict) else {}
        out = {"dateTime": value.get("dateTime"), "timeZone": value.get("timeZone")}
        if isinstance(out["dateTime"], str) and len(out["dateTime"]) > 19:
            # The API may echo an offset ("…+00:00"); we compare wall-clock times.
            out["dateTime"] = out["dateTime"][:19]
        return out

    reminders = event.get("reminders") or {"useDefault": False}
    return {
        "summary": event.get("summary", ""),
        "description": event.get("description", ""),
        "start": when(event.get("start")),
        "end": when(event.get("end")),
        "colorId": event.get("colorId"),
        "reminders": reminders,
    }


def event_body(plan_id: str, day: date, meal: Meal, options: EventOptions) -> dict[str, Any]:
    content = event_content(day, meal, options)
    body = dict(content)
    body["id"] = event_id(plan_id, meal.id)
    body["status"] = "confirmed"
    body["extendedProperties"] = {
        "private": {
            PLAN_ID_PROPERTY: plan_id,
            MEAL_ID_PROPERTY: meal.id,
            HASH_PROPERTY: content_hash(content),
        }
    }
    return body


def stored_hash(event: dict[str, Any]) -> str | None:
    private = (event.get("extendedProperties") or {}).get("private") or {}
    value = private.get(HASH_PROPERTY)
    return value if isinstance(value, str) else None
