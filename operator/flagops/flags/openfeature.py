"""`FlagopsProvider`: flagops flags through the OpenFeature SDK (extra `[openfeature]`).

Wraps a `FeatureFlags` (mounted file or relay) and evaluates locally, exactly as
`is_enabled` does. The evaluation context's `targeting_key` is the user id and
its `cohort` attribute the cohort. Every flagops flag is boolean: variant `on`
or `off`, the reason that decided (DISABLED, TARGETING_MATCH, STATIC, SPLIT,
DEFAULT), and flag metadata `stage` and `revision`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType
from openfeature.flag_evaluation import Reason as OpenFeatureReason
from openfeature.provider import AbstractProvider, Metadata

from flagops.flags.client import FeatureFlags
from flagops.flags.snapshot import Change

__all__ = ["COHORT_ATTRIBUTE", "FlagopsProvider"]

COHORT_ATTRIBUTE = "cohort"

T = TypeVar("T")
ObjectValue = Sequence[FlagValueType] | Mapping[str, FlagValueType]


class FlagopsProvider(AbstractProvider):
    """An OpenFeature provider over `flags`.

    It emits PROVIDER_CONFIGURATION_CHANGED (with the changed flag keys and the
    new revision) whenever a new document or an override takes effect. On
    `shutdown` it stops listening, and closes `flags` too when `close_on_shutdown`.
    """

    def __init__(self, flags: FeatureFlags, *, close_on_shutdown: bool = False) -> None:
        super().__init__()
        self.flags = flags
        self._close_on_shutdown = close_on_shutdown

    def get_metadata(self) -> Metadata:
        return Metadata(name="flagops")

    def initialize(self, evaluation_context: EvaluationContext) -> None:
        self.flags.add_listener(self._changed)

    def shutdown(self) -> None:
        self.flags.remove_listener(self._changed)
        if self._close_on_shutdown:
            self.flags.close()

    def _changed(self, change: Change) -> None:
        metadata: dict[str, bool | str | int | float] = {}
        if change.revision is not None:
            metadata["revision"] = change.revision
        self.emit_provider_configuration_changed(
            ProviderEventDetails(flags_changed=sorted(change.keys), metadata=metadata)
        )

    # -- resolution ---------------------------------------------------------------------

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        user_id: str | None = None
        cohort: str | None = None
        if evaluation_context is not None:
            user_id = evaluation_context.targeting_key
            found = evaluation_context.attributes.get(COHORT_ATTRIBUTE)
            if found is not None and not isinstance(found, str):
                return _error(
                    default_value, ErrorCode.INVALID_CONTEXT, "attribute 'cohort' must be a string"
                )
            cohort = found
        details = self.flags.details(flag_key, user_id, cohort)
        if details is None:
            return self._not_found(flag_key, default_value)
        metadata: dict[str, bool | int | float | str] = {}
        if details.stage is not None:
            metadata["stage"] = details.stage
        if details.revision is not None:
            metadata["revision"] = details.revision
        if details.overridden:
            metadata["overridden"] = True
        return FlagResolutionDetails(
            value=details.value,
            reason=OpenFeatureReason(details.reason.value),
            variant="on" if details.value else "off",
            flag_metadata=metadata,
        )

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._not_boolean(flag_key, default_value, "string")

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._not_boolean(flag_key, default_value, "integer")

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._not_boolean(flag_key, default_value, "float")

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: ObjectValue,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[ObjectValue]:
        return self._not_boolean(flag_key, default_value, "object")

    def _not_boolean(self, flag_key: str, default_value: T, asked: str) -> FlagResolutionDetails[T]:
        if self.flags.get(flag_key) is None and not self.flags.overridden(flag_key):
            return self._not_found(flag_key, default_value)
        return _error(
            default_value,
            ErrorCode.TYPE_MISMATCH,
            f"flag {flag_key!r} is boolean, asked for {asked}",
        )

    def _not_found(self, flag_key: str, default_value: T) -> FlagResolutionDetails[T]:
        revision = self.flags.revision
        why = f"not in revision {revision}" if revision else "no flag document loaded yet"
        message = f"flag {flag_key!r} not found: {why}"
        return _error(default_value, ErrorCode.FLAG_NOT_FOUND, message)


def _error(default_value: T, code: ErrorCode, message: str) -> FlagResolutionDetails[T]:
    return FlagResolutionDetails(
        value=default_value, reason=OpenFeatureReason.ERROR, error_code=code, error_message=message
    )
