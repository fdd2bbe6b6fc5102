"""Go-style duration strings ("90s", "1h30m", "250ms") as the CRDs spell them."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import Field

# A subset of Go's time.ParseDuration grammar that CEL's duration() also accepts,
# so the OpenAPI pattern and the CEL rules in the CRD agree on what is valid.
DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
_DURATION_RE = re.compile(DURATION_PATTERN)
_PART_RE = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def parse_duration(value: str) -> timedelta:
    """`"1h30m"` -> timedelta(hours=1, minutes=30); ValueError on anything else."""
    if not isinstance(value, str) or not _DURATION_RE.fullmatch(value):
        raise ValueError(
            f"invalid duration {value!r}: expected Go-style units like 90s, 10m, 1h30m, 250ms"
        )
    millis = sum(int(number) * _UNIT_MS[unit] for number, unit in _PART_RE.findall(value))
    return timedelta(milliseconds=millis)


def format_duration(value: timedelta, *, whole_seconds: bool = False) -> str:
    """The shortest Go-style spelling, e.g. timedelta(minutes=90) -> "1h30m".

    `whole_seconds` is for messages people read ("baking 3m10s of 10m"): the
    fraction of a second is dropped and a negative span (clock skew) reads 0s.
    """
    if whole_seconds:
        value = timedelta(seconds=max(0, int(value.total_seconds())))
    millis = round(value.total_seconds() * 1000)
    if millis < 0:
        raise ValueError(f"negative duration {value!r}")
    if millis == 0:
        return "0s"
    parts: list[str] = []
    for unit in ("h", "m", "s", "ms"):
        count, millis = divmod(millis, _UNIT_MS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_promql_duration(value: timedelta) -> str:
    """A PromQL range duration such as `[1h2m3s]`'s inside.

    PromQL (>= 2.26) accepts the same compound units; a zero or sub-millisecond
    range is not valid PromQL, so that raises.
    """
    text = format_duration(value)
    if text == "0s":
        raise ValueError("a PromQL range must be longer than zero")
    return text


# Kept as the string the user wrote (so specs round-trip unchanged); use
# parse_duration() to get a timedelta.
Duration = Annotated[str, Field(pattern=DURATION_PATTERN, max_length=64)]
