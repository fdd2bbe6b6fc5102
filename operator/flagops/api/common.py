"""Building blocks shared by both resources: the base model, timestamps, conditions."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from flagops.api.resources import API_VERSION


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a `Z`, the way the apiserver writes times."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_timestamp(value: Any) -> datetime | None:
    """A time as the apiserver writes it (`...Z`), or None for anything that is not one.

    Lenient on purpose: for reading fields of objects someone else wrote.
    """
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


# Serialised as a string even by a plain `model_dump()`, so dumps can go straight
# into a JSON patch; validated as timezone-aware because RFC 3339 requires an offset.
Timestamp = Annotated[
    AwareDatetime,
    PlainSerializer(format_timestamp, return_type=str, when_used="always"),
]


# A cohort name as apps pass it to is_enabled(); `all` in allowedCohorts means everyone.
Cohort = Annotated[str, Field(min_length=1, max_length=253)]


def unique_items(values: list[str], field: str) -> list[str]:
    """The list unchanged; ValueError on a duplicate (the CRD declares it a set)."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{field} lists {value!r} twice")
        seen.add(value)
    return values


class ApiModel(BaseModel):
    """camelCase on the wire (as DESIGN.md names the fields), snake_case in Python.

    Unknown fields are ignored so an older operator can read objects written
    by a newer one (the apiserver prunes what the schema does not declare).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_enum_values=False,
    )

    def to_api(self) -> dict[str, object]:
        """The object as the Kubernetes API wants it: camelCase, no nulls."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class ApiObject(ApiModel):
    """What every flagops object has besides its spec and status."""

    api_version: str = API_VERSION
    metadata: dict[str, Any] = {}

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str = Field(min_length=1, max_length=316, description="Type of the condition.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="",
        max_length=1024,
        description="CamelCase reason for the last transition.",
    )
    message: str = Field(default="", max_length=32768, description="Human-readable details.")
    last_transition_time: Timestamp = Field(description="When the condition last changed status.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation the condition was set for."
    )


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    observed_generation: int | None = None,
) -> list[Condition]:
    """A new list with `type_` set; lastTransitionTime moves only when the status changes."""
    result: list[Condition] = []
    found = False
    for condition in conditions:
        if condition.type != type_:
            result.append(condition)
            continue
        found = True
        changed = condition.status != status
        result.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now if changed else condition.last_transition_time,
                observed_generation=observed_generation,
            )
        )
    if not found:
        result.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                last_transition_time=now,
                observed_generation=observed_generation,
            )
        )
    return result


def get_condition(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
