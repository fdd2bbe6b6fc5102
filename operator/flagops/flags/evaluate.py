"""The normative flag evaluation (DESIGN.md, "Evaluation"), steps 3 to 6.

Overrides (step 1) and unknown keys (step 2) belong to the client. A flag is
compiled once into a `CompiledFlag` so the hot path does no parsing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import mmh3

__all__ = [
    "CompiledFlag",
    "Reason",
    "bucket",
    "compile_flag",
    "evaluate",
    "evaluate_compiled",
    "evaluate_reason",
    "evaluate_reason_compiled",
    "forced_flag",
    "murmur3_32",
    "parse_rfc3339",
    "to_epoch_us",
]

ALL_COHORTS = "all"

# RFC 3339 section 5.6 date-time; `fromisoformat` alone would also take
# date-only or offset-less forms that other SDKs reject.
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})",
    re.ASCII,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 date-time (offset required, `Z` accepted) to an aware datetime."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValueError("not an RFC 3339 date-time with a UTC offset")
    try:
        return datetime.fromisoformat(text.upper())
    except ValueError:
        raise ValueError("not a valid RFC 3339 date-time") from None


def to_epoch_us(moment: datetime) -> int:
    """Integer microseconds since the epoch: exact, so `[start, end)` edges compare exactly."""
    if moment.tzinfo is None:
        raise ValueError("now must be a timezone-aware datetime")
    return (moment - _EPOCH) // _MICROSECOND


def _murmur3_unsigned_fallback(data: bytes) -> int:
    return int(mmh3.hash(data, 0, False))


# MurmurHash3 x86_32, seed 0, unsigned. mmh3 >= 5 has a positional-only fast-call
# entry point that costs half of `mmh3.hash(data, 0, False)` per call.
murmur3_32: Callable[[bytes], int] = getattr(mmh3, "mmh3_32_uintdigest", _murmur3_unsigned_fallback)


def bucket(key: str, user_id: str) -> int:
    """The user's bucket 1..100 for `key`: Unleash's normalized_hash with groupId = key."""
    text = f"{key}:{user_id}"
    # Always hand mmh3 bytes: mmh3 5.3 crashes the interpreter (SIGSEGV) on a str
    # holding a lone surrogate instead of raising.
    try:
        data = text.encode()
    except UnicodeEncodeError:
        # Lone surrogates are not UTF-8; hash their raw code units rather than fail the caller.
        data = text.encode("utf-8", "surrogatepass")
    return murmur3_32(data) % 100 + 1


@dataclass(frozen=True, slots=True)
class CompiledFlag:
    """One flag's state, parsed once, ready for the hot path."""

    key: str
    enabled: bool
    percent: int
    cohorts: frozenset[str]
    all_cohorts: bool
    start_us: int | None
    end_us: int | None
    windowed: bool
    state: Mapping[str, Any]
    # The hot path's shortcut: enabled, no dates, no "all", 0 < percent < 100.
    plain: bool
    prefix: str


def compile_flag(key: str, state: Mapping[str, Any]) -> CompiledFlag:
    """Compile one flag's `flags.json` entry. Raises ValueError on a malformed entry."""
    enabled = state.get("enabled")
    percent = state.get("rolloutPercent", 0)
    cohorts = state.get("allowedCohorts") or ()
    if not isinstance(enabled, bool):
        raise ValueError(f"flag {key!r}: enabled must be a boolean")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
        raise ValueError(f"flag {key!r}: rolloutPercent must be an integer 0..100")
    if not all(isinstance(c, str) for c in cohorts):
        raise ValueError(f"flag {key!r}: allowedCohorts must be strings")
    start_us = _date_us(key, state.get("startDate"))
    end_us = _date_us(key, state.get("endDate"))
    cohort_set = frozenset(cohorts)
    windowed = start_us is not None or end_us is not None
    all_cohorts = ALL_COHORTS in cohort_set
    return CompiledFlag(
        key=key,
        enabled=enabled,
        percent=percent,
        cohorts=cohort_set,
        all_cohorts=all_cohorts,
        start_us=start_us,
        end_us=end_us,
        windowed=windowed,
        state=state,
        plain=enabled and not windowed and not all_cohorts and 0 < percent < 100,
        prefix=f"{key}:",
    )


def forced_flag(key: str, value: bool) -> CompiledFlag:
    """A flag that evaluates to `value` for everyone: how the client applies an override."""
    return compile_flag(
        key, {"enabled": bool(value), "rolloutPercent": 100, "allowedCohorts": [ALL_COHORTS]}
    )


def _date_us(key: str, value: object) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"flag {key!r}: dates must be RFC 3339 strings or null")
    try:
        return to_epoch_us(parse_rfc3339(value))
    except ValueError as exc:
        raise ValueError(f"flag {key!r}: {exc}") from None


def evaluate_compiled(
    flag: CompiledFlag, user_id: str | None, cohort: str | None, now_us: int
) -> bool:
    """Steps 3-6 over a compiled flag at `now_us` (epoch microseconds)."""
    if not flag.enabled:
        return False
    if flag.windowed:
        if flag.start_us is not None and now_us < flag.start_us:
            return False
        if flag.end_us is not None and now_us >= flag.end_us:
            return False
    if flag.all_cohorts or (cohort is not None and cohort in flag.cohorts):
        return True
    percent = flag.percent
    if percent >= 100:
        return True
    if percent <= 0 or user_id is None:
        return False
    return bucket(flag.key, user_id) <= percent


class Reason(StrEnum):
    """Which step decided, in OpenFeature's words (OFREP and the provider report it)."""

    DISABLED = "DISABLED"  # off, or outside [startDate, endDate)
    TARGETING_MATCH = "TARGETING_MATCH"  # a cohort (or `all`) decided
    STATIC = "STATIC"  # 100%: on for everyone
    SPLIT = "SPLIT"  # the percentage bucket decided (0% included)
    DEFAULT = "DEFAULT"  # a partial percentage but no user id to bucket


def evaluate_reason_compiled(
    flag: CompiledFlag, user_id: str | None, cohort: str | None, now_us: int
) -> tuple[bool, Reason]:
    """`evaluate_compiled` and the step that decided; the two never disagree on the value."""
    if not flag.enabled:
        return False, Reason.DISABLED
    if flag.windowed:
        if flag.start_us is not None and now_us < flag.start_us:
            return False, Reason.DISABLED
        if flag.end_us is not None and now_us >= flag.end_us:
            return False, Reason.DISABLED
    if flag.all_cohorts or (cohort is not None and cohort in flag.cohorts):
        return True, Reason.TARGETING_MATCH
    percent = flag.percent
    if percent >= 100:
        return True, Reason.STATIC
    if percent <= 0:
        return False, Reason.SPLIT
    if user_id is None:
        return False, Reason.DEFAULT
    return bucket(flag.key, user_id) <= percent, Reason.SPLIT


def evaluate_reason(
    state: Mapping[str, Any],
    key: str,
    user_id: str | None = None,
    cohort: str | None = None,
    now: datetime | None = None,
) -> tuple[bool, Reason]:
    """`evaluate` with the reason that decided it."""
    now_us = to_epoch_us(now if now is not None else datetime.now(UTC))
    return evaluate_reason_compiled(compile_flag(key, state), user_id, cohort, now_us)


def evaluate(
    state: Mapping[str, Any],
    key: str,
    user_id: str | None = None,
    cohort: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Whether flag `key` with `flags.json` entry `state` is on for this user at `now`.

    `now` must be timezone-aware; default the current time.
    """
    now_us = to_epoch_us(now if now is not None else datetime.now(UTC))
    return evaluate_compiled(compile_flag(key, state), user_id, cohort, now_us)
