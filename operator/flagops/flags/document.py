"""The published flag document: the `flags.json` key of the `feature-flags` ConfigMap.

Shape (DESIGN.md, "The flag ConfigMap")::

    {"schema": 1, "revision": "<sha256 of the canonical flags object>",
     "flags": {"<key>": {"enabled": ..., "rolloutPercent": ..., ...}}}

The text is canonical JSON, so the operator can compare bytes to skip writes and
every reader can recompute the revision.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flagops.flags.evaluate import parse_rfc3339

SCHEMA_VERSION = 1

Percent = Annotated[int, Field(ge=0, le=100, strict=True)]


class FlagState(BaseModel):
    """One flag's published state, as apps evaluate it."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    enabled: Annotated[bool, Field(strict=True)]
    rollout_percent: Percent = Field(alias="rolloutPercent")
    allowed_cohorts: tuple[Annotated[str, Field(strict=True)], ...] = Field(
        default=(), alias="allowedCohorts"
    )
    start_date: str | None = Field(default=None, alias="startDate")
    end_date: str | None = Field(default=None, alias="endDate")
    stage: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("start_date", "end_date")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rfc3339(value)
        return value

    def to_json_obj(self) -> dict[str, Any]:
        """The flag's entry in `flags.json`: camelCase keys, every field present."""
        return self.model_dump(by_alias=True, mode="json")


# The per-flag keys this reader understands. A newer operator may add fields;
# readers ignore them rather than freezing an app on its last good state.
_KNOWN_FIELDS = frozenset(field.alias or name for name, field in FlagState.model_fields.items())


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no optional whitespace: equal values give equal text."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def revision_of(flags_obj: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON of the `flags` object."""
    return hashlib.sha256(canonical_json(flags_obj).encode("utf-8")).hexdigest()


def _as_state(key: str, value: FlagState | Mapping[str, Any]) -> FlagState:
    if isinstance(value, FlagState):
        return value
    try:
        return FlagState.model_validate(value)
    except ValidationError as exc:
        raise ValueError(f"flag {key!r}: {_describe(exc)}") from None


def build_document(flags: Mapping[str, FlagState | Mapping[str, Any]]) -> tuple[str, str]:
    """The `flags.json` text for `flags` and its revision.

    Deterministic: the same flags (in any order) give byte-identical text.
    """
    return document_from_entries({key: _as_state(key, flags[key]).to_json_obj() for key in flags})


def document_from_entries(entries: Mapping[str, Mapping[str, Any]]) -> tuple[str, str]:
    """`build_document` for entries already dumped by `FlagState.to_json_obj()`.

    The operator keeps each flag's entry between publishes, so a one-flag change
    does not dump every flag again.
    """
    flags_obj: dict[str, Any] = {}
    for key in sorted(entries):
        _check_key(key)
        flags_obj[key] = entries[key]
    revision = revision_of(flags_obj)
    text = canonical_json({"schema": SCHEMA_VERSION, "revision": revision, "flags": flags_obj})
    return text, revision


def parse_document(text: str | bytes) -> dict[str, dict[str, Any]]:
    """Validate a `flags.json` text and return its flags, key -> flag entry.

    Raises ValueError naming the problem (never echoing the document).
    """
    return read_document(text)[1]


def read_document(text: str | bytes) -> tuple[str, dict[str, dict[str, Any]]]:
    """Like `parse_document`, also returning the document's revision."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"flags document is not valid JSON: {_json_error(exc)}") from None
    except RecursionError:
        # A hand-edited ConfigMap can nest arrays 500,000 deep; that is bad input, not a
        # crash of whoever reads it (the relay's watch, an app's file source).
        raise ValueError("flags document is nested too deeply") from None
    if not isinstance(doc, dict):
        raise ValueError("flags document must be a JSON object")
    schema = doc.get("schema")
    if schema != SCHEMA_VERSION or isinstance(schema, bool):
        raise ValueError(f"flags document has unsupported schema (expected {SCHEMA_VERSION})")
    flags_obj = doc.get("flags")
    if not isinstance(flags_obj, dict):
        raise ValueError("flags document has no 'flags' object")
    revision = doc.get("revision")
    if not isinstance(revision, str):
        raise ValueError("flags document has no 'revision' string")
    if revision != revision_of(flags_obj):
        raise ValueError("flags document revision does not match its flags")

    parsed: dict[str, dict[str, Any]] = {}
    for key, entry in flags_obj.items():
        _check_key(key)
        if not isinstance(entry, dict):
            raise ValueError(f"flag {key!r}: must be a JSON object")
        known = {name: value for name, value in entry.items() if name in _KNOWN_FIELDS}
        parsed[key] = _as_state(key, known).to_json_obj()
    return revision, parsed


def _check_key(key: object) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError("flag keys must be non-empty strings")


def _describe(exc: ValidationError) -> str:
    # include_input=False: the offending value may be anything a human typed.
    parts = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = ".".join(str(part) for part in err["loc"]) or "(flag)"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def _json_error(exc: json.JSONDecodeError | UnicodeDecodeError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "not UTF-8"
