"""The FeatureFlag resource (shortName `ff`): spec as written, status as resolved."""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from flagops.api.common import (
    ApiModel,
    ApiObject,
    Cohort,
    Condition,
    Timestamp,
    read_metadata,
    read_part,
    unique_items,
)
from flagops.api.stages import Stage

KEY_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
KEY_MAX_LENGTH = 253
_KEY_RE = re.compile(KEY_PATTERN)
KEY_MESSAGE = (
    "key must start with a lowercase letter or digit and contain only lowercase letters, "
    "digits, '_', '.' and '-'"
)

SOURCE_SPEC = "spec"
_SOURCE_ROLLOUT_PREFIX = "rollout/"
SOURCE_PATTERN = r"^(spec|rollout/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$"

# Cohort that gives everyone access (evaluation step 4).
COHORT_ALL = "all"

# Bounds on spec.metadata (docs/api.md): every flag's metadata is published to every app,
# so one flag must not be able to fill the namespace's ConfigMap (1 MiB). Room for a
# paragraph of description and a dozen short labels.
METADATA_MAX_ENTRIES = 16
METADATA_KEY_MAX_LENGTH = 63
METADATA_VALUE_MAX_LENGTH = 1024
METADATA_MAX_TOTAL = 4096  # characters of all keys and values together
METADATA_KEY_MESSAGE = f"metadata keys must be 1 to {METADATA_KEY_MAX_LENGTH} characters"
METADATA_TOTAL_MESSAGE = (
    f"metadata keys and values together must be at most {METADATA_MAX_TOTAL} characters"
)

MetadataValue = Annotated[str, Field(strict=True, max_length=METADATA_VALUE_MAX_LENGTH)]

# A namespace name (DNS-1123 label), as `spec.sharedWith` lists them.
NAMESPACE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
SHARED_WITH_MAX_ITEMS = 64
Namespace = Annotated[str, Field(min_length=1, max_length=63, pattern=NAMESPACE_PATTERN)]


class FeatureFlagCondition(StrEnum):
    PUBLISHED = "Published"
    CONFLICT = "Conflict"
    SHARED = "Shared"


def validate_key(value: str) -> str:
    if len(value) > KEY_MAX_LENGTH or not _KEY_RE.fullmatch(value):
        raise ValueError(f"{KEY_MESSAGE} (at most {KEY_MAX_LENGTH} characters), got {value!r}")
    return value


class FeatureFlagSpec(ApiModel):
    """The flag as its owner wrote it."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.startDate) || !has(self.endDate)"
                    " || timestamp(self.endDate) > timestamp(self.startDate)",
                    "message": "endDate must be after startDate (the active window is"
                    " [startDate, endDate))",
                    "fieldPath": ".endDate",
                    "reason": "FieldValueInvalid",
                }
            ]
        }
    )

    key: str | None = Field(
        default=None,
        min_length=1,
        max_length=KEY_MAX_LENGTH,
        description="The name apps ask for. Defaults to metadata.name. Unlike object names"
        " it may contain underscores.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"self.matches('{KEY_PATTERN}')", "message": KEY_MESSAGE}
            ]
        },
    )
    enabled: bool = Field(strict=True, default=False, description="Global on/off.")
    rollout_percent: int = Field(
        strict=True,
        default=0,
        ge=0,
        le=100,
        description="Share of users (0..100) outside the cohorts.",
    )
    allowed_cohorts: list[Cohort] = Field(
        default=[],
        max_length=64,
        description="Cohorts that always have access while the flag is enabled;"
        " `all` means everyone.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    start_date: Timestamp | None = Field(
        default=None, description="Start of the active window (RFC 3339, inclusive)."
    )
    end_date: Timestamp | None = Field(
        default=None, description="End of the active window (RFC 3339, exclusive)."
    )
    metadata: dict[str, MetadataValue] = Field(
        default={},
        max_length=METADATA_MAX_ENTRIES,
        description="Free-form string labels: description, category, version, owner."
        f" At most {METADATA_MAX_ENTRIES} entries, keys up to {METADATA_KEY_MAX_LENGTH} and"
        f" values up to {METADATA_VALUE_MAX_LENGTH} characters, {METADATA_MAX_TOTAL} in all.",
        json_schema_extra={
            "x-kubernetes-validations": [
                {
                    "rule": f"self.all(k, size(k) >= 1 && size(k) <= {METADATA_KEY_MAX_LENGTH})",
                    "message": METADATA_KEY_MESSAGE,
                },
                {
                    "rule": f"self.map(k, size(k) + size(self[k])).sum() <= {METADATA_MAX_TOTAL}",
                    "message": METADATA_TOTAL_MESSAGE,
                },
            ]
        },
    )
    integration: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="The integration this flag gates (default metric queries, probes).",
    )
    shared_with: list[Namespace] | None = Field(
        # No default: a flag that shares nothing keeps its spec as written (no GitOps drift).
        default=None,
        max_length=SHARED_WITH_MAX_ITEMS,
        description="Other namespaces whose apps may read this flag: the operator writes a"
        " copy into each (ConfigMap `<configmap>-from-<this namespace>`) and the relay"
        " serves it to their tokens (docs/sharing.md). Only who may edit this flag grants.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )

    @field_validator("key")
    @classmethod
    def _key_pattern(cls, value: str | None) -> str | None:
        return None if value is None else validate_key(value)

    @field_validator("allowed_cohorts")
    @classmethod
    def _unique_cohorts(cls, value: list[str]) -> list[str]:
        return unique_items(value, "allowedCohorts")

    @field_validator("metadata")
    @classmethod
    def _metadata_bounds(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not 1 <= len(k) <= METADATA_KEY_MAX_LENGTH for k in value):
            raise ValueError(METADATA_KEY_MESSAGE)
        if sum(len(k) + len(v) for k, v in value.items()) > METADATA_MAX_TOTAL:
            raise ValueError(METADATA_TOTAL_MESSAGE)
        return value

    @field_validator("shared_with")
    @classmethod
    def _unique_namespaces(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else unique_items(value, "sharedWith")

    @model_validator(mode="after")
    def _window(self) -> FeatureFlagSpec:
        # Mirrors the CRD's CEL rule so Python callers (CLI validate) see the same verdict.
        if self.start_date and self.end_date and self.end_date <= self.start_date:
            raise ValueError("endDate must be after startDate")
        return self


def effective_key(name: str, spec: FeatureFlagSpec) -> str:
    """The key apps ask for: spec.key, else the object's name."""
    return spec.key if spec.key is not None else name


def rollout_source(rollout_name: str) -> str:
    """The `status.effective.source` of a flag controlled by Rollout `rollout_name`."""
    return f"{_SOURCE_ROLLOUT_PREFIX}{rollout_name}"


def source_rollout(source: str) -> str | None:
    """The Rollout name in a `rollout/<name>` source, None for `spec`."""
    if source.startswith(_SOURCE_ROLLOUT_PREFIX):
        return source[len(_SOURCE_ROLLOUT_PREFIX) :]
    return None


class EffectiveFlag(ApiModel):
    """The resolved state that is published to apps (one entry of flags.json, plus source)."""

    key: str | None = Field(
        default=None, description="The key apps ask for (spec.key, else the object's name)."
    )
    enabled: bool = Field(description="Whether the flag is on.")
    rollout_percent: int = Field(ge=0, le=100, description="Published percent.")
    allowed_cohorts: list[str] = Field(default=[], description="Published cohorts.")
    start_date: Timestamp | None = Field(default=None, description="Active window start.")
    end_date: Timestamp | None = Field(default=None, description="Active window end.")
    stage: Stage | None = Field(
        default=None, description="The Rollout stage, when a Rollout controls the flag."
    )
    metadata: dict[str, str] = Field(default={}, description="The spec's metadata.")
    source: str = Field(
        pattern=SOURCE_PATTERN,
        description="Where the state comes from: `spec` or `rollout/<name>`.",
    )


class FeatureFlagStatus(ApiModel):
    """Written by the operator only."""

    observed_generation: int | None = Field(
        default=None, description="The .metadata.generation the status was computed from."
    )
    effective: EffectiveFlag | None = Field(
        default=None, description="The state published in the flag ConfigMap."
    )
    conditions: list[Condition] = Field(
        default=[],
        description="Published, Conflict, Shared (while spec.sharedWith lists namespaces).",
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
        },
    )
    published_revision: str | None = Field(
        default=None, description="The flags.json revision that contains this state."
    )
    published_at: Timestamp | None = Field(
        default=None,
        description="When the flag ConfigMap first carried this state (a Rollout's stage"
        " bakes from here).",
    )


class FeatureFlag(ApiObject):
    """A whole FeatureFlag object as the API returns it."""

    kind: str = "FeatureFlag"
    spec: FeatureFlagSpec
    status: FeatureFlagStatus = FeatureFlagStatus()

    @property
    def key(self) -> str:
        return effective_key(self.name, self.spec)

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> FeatureFlag:
        """The object as the API returned it; never raises. A part that does not parse is
        named in `problems` and read as far as it goes (defaults for the rest)."""
        spec, spec_problem = read_part(FeatureFlagSpec, obj.get("spec"), "spec")
        status, status_problem = read_part(FeatureFlagStatus, obj.get("status"), "status")
        flag = cls(
            metadata=read_metadata(obj),
            spec=spec or FeatureFlagSpec(),
            status=status or FeatureFlagStatus(),
        )
        flag._with_problems({"spec": spec_problem, "status": status_problem})
        return flag
