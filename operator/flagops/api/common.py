"""Building blocks shared by both resources: the base model, timestamps, conditions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
)
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


def error_message(exc: ValidationError, part: str) -> str:
    """`spec.a.b: msg; spec.c: msg` for a part of an object that failed its model."""
    return "; ".join(
        f"{part}.{'.'.join(str(p) for p in err['loc']) or '-'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)
    )


M = TypeVar("M", bound=BaseModel)


def read_part(model: type[M], raw: Any, part: str) -> tuple[M | None, str | None]:
    """`raw` as `model`, and what was wrong with it (None when nothing was).

    Lenient: when the whole does not parse, the fields that do are kept and the rest
    take their defaults; None only when even that fails (a required field is bad).
    """
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        return None, f"{part}: not an object ({type(raw).__name__})"
    try:
        return model.model_validate(raw), None
    except ValidationError as exc:
        problem = error_message(exc, part)
        bad = {str(err["loc"][0]) for err in exc.errors() if err["loc"]}
    try:
        return model.model_validate({k: v for k, v in raw.items() if k not in bad}), problem
    except ValidationError:
        return None, problem


class ApiObject(ApiModel):
    """What every flagops object has besides its spec and status."""

    api_version: str = API_VERSION
    metadata: dict[str, Any] = {}
    # What `from_object` could not read (one message per part, `spec.x: msg`).
    _problems: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.metadata.get("namespace", ""))

    @property
    def uid(self) -> str:
        return str(self.metadata.get("uid", ""))

    @property
    def created(self) -> str:
        """metadata.creationTimestamp as the API gives it (RFC 3339, sorts as text)."""
        return str(self.metadata.get("creationTimestamp", ""))

    @property
    def generation(self) -> int:
        value = self.metadata.get("generation")
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    @property
    def annotations(self) -> Mapping[str, str]:
        value = self.metadata.get("annotations")
        return value if isinstance(value, Mapping) else {}

    @property
    def problems(self) -> Mapping[str, str]:
        """Per part (`spec`, `status`): what did not parse when read with `from_object`."""
        return self._problems

    @property
    def spec_error(self) -> str | None:
        """Why the spec did not parse, or None; a spec with an error must not be acted on."""
        return self._problems.get("spec")

    def unreadable(self, part: str, field: str) -> bool:
        """Whether `from_object` could not read `part.field` (camelCase, as on the wire)."""
        return any(
            item.startswith((f"{part}.{field}:", f"{part}.{field}."))
            for item in self._problems.get(part, "").split("; ")
        )

    def _with_problems(self, problems: Mapping[str, str | None]) -> None:
        self._problems = {part: text for part, text in problems.items() if text}


def read_metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return dict(meta) if isinstance(meta, Mapping) else {}


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
