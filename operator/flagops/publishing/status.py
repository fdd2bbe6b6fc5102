"""A FeatureFlag's status after a publish: the Published and Conflict conditions.

Pure: the publisher hands in each flag's record and outcome and patches what this
module says, only when it differs from the stored status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flagops.api.common import (
    Condition,
    ConditionStatus,
    format_timestamp,
    get_condition,
    set_condition,
)
from flagops.api.featureflag import FeatureFlagCondition
from flagops.publishing.fit import DEFAULT_MAX_DOCUMENT_BYTES
from flagops.publishing.record import FlagRecord
from flagops.publishing.resolve import FlagOutcome

DOCUMENT_TOO_LARGE = "DocumentTooLarge"


def too_large_message(outcome: FlagOutcome, configmap_name: str, limit: int) -> str:
    return (
        f"key {outcome.key!r} is left out of ConfigMap {configmap_name}: the namespace's"
        f" flags document would pass {limit} bytes, and the newest flags are left out first."
        " Apps get their default for it. Delete unused flags or shorten metadata."
    )


def was_omitted(record: FlagRecord) -> bool:
    for cond in record.stored_status().get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == FeatureFlagCondition.PUBLISHED:
            return bool(cond.get("reason") == DOCUMENT_TOO_LARGE)
    return False


def prune_none(value: Any) -> Any:
    """`value` without null entries, as the apiserver stores a merge-patched object."""
    if isinstance(value, dict):
        return {k: prune_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_none(v) for v in value]
    return value


def conflict_message(outcome: FlagOutcome) -> str:
    others = ", ".join(outcome.conflict_with)
    if outcome.published:
        return (
            f"key {outcome.key!r} is also claimed by FeatureFlag {others}; "
            "this older flag stays published"
        )
    return (
        f"key {outcome.key!r} is already published by older FeatureFlag {others}; "
        "this flag is not published until the key is unique"
    )


def desired_status(
    record: FlagRecord,
    outcome: FlagOutcome,
    revision: str,
    configmap_name: str,
    now: datetime,
    limit: int = DEFAULT_MAX_DOCUMENT_BYTES,
    published_at: datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """The FeatureFlag's status after a publish, and whether a key conflict just began.

    `publishedRevision` is the document revision that first carried this flag's
    current state, so it moves only when the flag's own published state does;
    `publishedAt` is when (`published_at`: taken after the ConfigMap write), and a
    Rollout's stage bakes from it.
    """
    current = record.stored_status()
    conditions = _conditions(current.get("conditions"))
    gen = record.generation
    effective = outcome.effective()
    if outcome.error is not None:
        published = (ConditionStatus.FALSE, "InvalidSpec", outcome.error)
    elif outcome.write_error is not None:
        published = (ConditionStatus.FALSE, "PublishFailed", outcome.write_error)
    elif outcome.omitted:
        published = (
            ConditionStatus.FALSE,
            DOCUMENT_TOO_LARGE,
            too_large_message(outcome, configmap_name, limit),
        )
    elif outcome.published:
        published = (
            ConditionStatus.TRUE,
            "Published",
            f"published as {outcome.key!r} in ConfigMap {configmap_name}",
        )
    else:
        published = (ConditionStatus.FALSE, "KeyConflict", conflict_message(outcome))
    conditions = set_condition(
        conditions, FeatureFlagCondition.PUBLISHED, *published, now=now, observed_generation=gen
    )
    was_conflict = get_condition(conditions, FeatureFlagCondition.CONFLICT)
    if outcome.conflict_with:
        conflict = (ConditionStatus.TRUE, "DuplicateKey", conflict_message(outcome))
    else:
        conflict = (ConditionStatus.FALSE, "UniqueKey", f"no other flag uses key {outcome.key!r}")
    conditions = set_condition(
        conditions, FeatureFlagCondition.CONFLICT, *conflict, now=now, observed_generation=gen
    )
    new_conflict = bool(outcome.conflict_with) and (
        was_conflict is None or was_conflict.status != ConditionStatus.TRUE
    )

    published_revision = current.get("publishedRevision")
    stamp = current.get("publishedAt")
    if outcome.published and (
        prune_none(effective) != current.get("effective") or not published_revision or not stamp
    ):
        published_revision = revision
        stamp = format_timestamp(published_at or now)
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "effective": effective,
        "publishedRevision": published_revision if outcome.published else None,
        "publishedAt": stamp if outcome.published else None,
        "conditions": [c.to_api() for c in conditions],
    }
    return status, new_conflict


def _conditions(stored: Any) -> list[Condition]:
    """The stored conditions that still parse: a hand-edited status loses only its garbage."""
    conditions = []
    for item in stored if isinstance(stored, list) else []:
        try:
            conditions.append(Condition.model_validate(item))
        except ValueError:
            continue
    return conditions
