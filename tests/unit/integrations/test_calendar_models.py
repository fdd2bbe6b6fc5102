"""Meal-plan validation and the meal -> event mapping."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from flagops.integrations.calendar import MealPlan, event_id
from flagops.integrations.calendar.models import (
    EventOptions,
    Meal,
    content_hash,
    event_body,
    remote_content,
)


def plan_with(meal: dict[str, Any], **day: object) -> dict[str, Any]:
    return {"id": "plan-1", "days": [{"date": "2024-12-18", "meals": [meal], **day}]}


@pytest.mark.parametrize(
    ("plan", "field"),
    [
        ({"days": []}, "id"),
        (plan_with({"type": "lunch", "name": "Soup"}), "days.0.meals.0.id"),
        (plan_with({"id": "m1", "name": "Soup"}, date="2024-13-40"), "days.0.date"),
        (plan_with({"id": "m1", "name": "Soup", "time": "25:99"}), "days.0.meals.0.time"),
        (
            plan_with({"id": "m1", "name": "Soup", "durationMinutes": -5}),
            "days.0.meals.0.durationMinutes",
        ),
    ],
)
def test_invalid_plans_name_the_field(plan: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        MealPlan.model_validate(plan)
    locations = {".".join(str(p) for p in e["loc"]) for e in info.value.errors()}
    assert field in locations, locations


def test_duplicate_meal_ids_are_named() -> None:
    plan = {
        "id": "p",
        "days": [
            {"date": "2024-12-18", "meals": [{"id": "m1", "name": "A"}]},
            {"date": "2024-12-19", "meals": [{"id": "m1", "name": "B"}]},
        ],
    }
    with pytest.raises(ValidationError, match=r"days\.1\.meals\.0\.id: duplicate meal id 'm1'"):
        MealPlan.model_validate(plan)


@pytest.mark.parametrize(
    ("meal_type", "start", "minutes", "color"),
    [
        ("breakfast", "08:00", 30, "5"),
        ("lunch", "12:30", 45, "10"),
        ("dinner", "19:00", 60, "9"),
        ("snack", "15:30", 15, "6"),
        ("brunch", "12:00", 30, "8"),
    ],
)
def test_defaults_and_colors_by_type(meal_type: str, start: str, minutes: int, color: str) -> None:
    meal = Meal.model_validate({"id": "m", "type": meal_type, "name": "x"})
    body = event_body("p", date(2024, 12, 18), meal, EventOptions())
    assert body["start"]["dateTime"] == f"2024-12-18T{start}:00"
    h, m = map(int, start.split(":"))
    end_minutes = h * 60 + m + minutes
    assert (
        body["end"]["dateTime"] == f"2024-12-18T{end_minutes // 60:02d}:{end_minutes % 60:02d}:00"
    )
    assert body["colorId"] == color


def test_event_body_content() -> None:
    meal = Meal.model_validate(
        {
            "id": "m1",
            "type": "breakfast",
            "name": "Oatmeal",
            "time": "07:15",
            "durationMinutes": 20,
            "ingredients": ["oats", "milk"],
            "notes": "warm",
        }
    )
    body = event_body("plan-1", date(2024, 12, 18), meal, EventOptions(reminder_minutes=10))
    assert body["id"] == hashlib.sha1(b"plan-1:m1").hexdigest() == event_id("plan-1", "m1")
    assert body["summary"] == "Oatmeal"
    assert body["description"] == "Ingredients:\noats\nmilk\n\nwarm"
    assert body["reminders"] == {
        "useDefault": False,
        "overrides": [{"method": "popup", "minutes": 10}],
    }
    assert body["start"] == {"dateTime": "2024-12-18T07:15:00", "timeZone": "UTC"}
    private = body["extendedProperties"]["private"]
    assert private["flagopsPlanId"] == "plan-1" and private["flagopsMealId"] == "m1"
    assert private["flagopsContentHash"] == content_hash(remote_content(body))
    bare = event_body(
        "plan-1",
        date(2024, 12, 18),
        meal,
        EventOptions(include_ingredients=False, create_reminders=False),
    )
    assert bare["description"] == "warm" and bare["reminders"] == {"useDefault": False}
    assert (
        bare["extendedProperties"]["private"]["flagopsContentHash"] != private["flagopsContentHash"]
    )


def test_remote_offset_does_not_read_as_an_edit() -> None:
    meal = Meal.model_validate({"id": "m1", "type": "lunch", "name": "Soup"})
    body = event_body("p", date(2024, 12, 18), meal, EventOptions())
    echoed = {**body, "start": {**body["start"], "dateTime": body["start"]["dateTime"] + "Z"}}
    assert (
        content_hash(remote_content(echoed))
        == body["extendedProperties"]["private"]["flagopsContentHash"]
    )
