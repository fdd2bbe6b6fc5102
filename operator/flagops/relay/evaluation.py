"""OFREP evaluation over one revision of a namespace's flags, precomputed for speed.

Each flag's possible answers are JSON fragments made once per revision. What a
flag answers depends only on the user's cohort, the time window it is in and,
for a partial percentage, the user's bucket. So per (cohort class, time segment)
a `Plan` holds the joined fragments of every flag the user cannot change and the
few numbers the rest need; a request then hashes only the percentage flags.

The answers are those of `flagops.flags.evaluate.evaluate_reason_compiled`, the
SDK's own evaluation (tests/unit/relay checks the two agree).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from flagops.flags.evaluate import (
    CompiledFlag,
    Reason,
    compile_flag,
    evaluate_reason_compiled,
    murmur3_32,
)

VARIANT_ON = "on"
VARIANT_OFF = "off"
# Plans are cheap to rebuild; this only bounds memory against many cohorts x windows.
_MAX_PLANS = 512


def encode_text(text: str) -> bytes:
    # As flagops.flags.evaluate.bucket: lone surrogates hash as their raw code units.
    try:
        return text.encode()
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _fragment(key: str, value: bool, reason: Reason, metadata: Mapping[str, str]) -> bytes:
    return orjson.dumps(
        {
            "key": key,
            "value": value,
            "reason": reason.value,
            "variant": VARIANT_ON if value else VARIANT_OFF,
            "metadata": metadata,
        }
    )


# A flag the user's bucket decides, (prefix, percent, on, off): the answer is `on` iff
# murmur3(prefix + user) % 100 < percent. A tuple: unpacking one is the fastest loop.
_Split = tuple[bytes, int, bytes, bytes]


@dataclass(frozen=True, slots=True)
class Plan:
    fixed: bytes  # comma-joined fragments of the flags every user of the class gets alike
    opening: bytes  # b"[" and `fixed` with its trailing comma: what precedes the splits
    splits: tuple[_Split, ...]
    anonymous: bytes  # the whole flags array for a request with no targetingKey


class FlagFragments:
    """Every answer one flag can give, as JSON, made on first use."""

    __slots__ = ("_cache", "flag", "metadata")

    def __init__(self, flag: CompiledFlag, metadata: Mapping[str, str]) -> None:
        self.flag = flag
        self.metadata = metadata
        self._cache: dict[tuple[bool, Reason], bytes] = {}

    def get(self, value: bool, reason: Reason) -> bytes:
        found = self._cache.get((value, reason))
        if found is None:
            found = self._cache[(value, reason)] = _fragment(
                self.flag.key, value, reason, self.metadata
            )
        return found


class RevisionView:
    """One namespace's flags at one revision, ready for OFREP requests."""

    def __init__(self, revision: str, flags: Mapping[str, Mapping[str, Any]]) -> None:
        self.revision = revision
        self.fragments: dict[str, FlagFragments] = {}
        cohorts: set[str] = set()
        edges: set[int] = set()
        for key in sorted(flags):
            state = flags[key]
            flag = compile_flag(key, state)
            metadata = {"revision": revision}
            stage = state.get("stage")
            if isinstance(stage, str):
                metadata["stage"] = stage
            self.fragments[key] = FlagFragments(flag, metadata)
            cohorts |= flag.cohorts
            edges.update(us for us in (flag.start_us, flag.end_us) if us is not None)
        self.cohorts = frozenset(cohorts)
        # Between two consecutive window edges every flag's window test is constant.
        self.edges = sorted(edges)
        self._plans: dict[tuple[str | None, int], Plan] = {}

    def __len__(self) -> int:
        return len(self.fragments)

    def cohort_class(self, cohort: str | None) -> str | None:
        """A cohort no flag names evaluates as no cohort at all."""
        return cohort if cohort is not None and cohort in self.cohorts else None

    def segment(self, now_us: int) -> int:
        return bisect.bisect_right(self.edges, now_us)

    def evaluate_one(
        self, key: str, user_id: str | None, cohort: str | None, now_us: int
    ) -> bytes | None:
        """One flag's OFREP success object, or None for an unknown key."""
        fragments = self.fragments.get(key)
        if fragments is None:
            return None
        value, reason = evaluate_reason_compiled(fragments.flag, user_id, cohort, now_us)
        return fragments.get(value, reason)

    def evaluate_all(
        self,
        user_id: str | None,
        cohort_class: str | None,
        segment: int,
        now_us: int,
        head: bytes = b"",
        tail: bytes = b"",
    ) -> bytes:
        """`head`, the `flags` array of a bulk reply, `tail`: one allocation for the lot."""
        plan = self.plan(cohort_class, segment, now_us)
        if user_id is None:
            return head + plan.anonymous + tail
        user = encode_text(user_id)
        hash32 = murmur3_32
        picked = [
            on if hash32(prefix + user) % 100 < percent else off
            for prefix, percent, on, off in plan.splits
        ]
        if not picked:
            return head + b"[" + plan.fixed + b"]" + tail
        # Glue head and tail to the end fragments, so the one join copies everything once.
        picked[0] = head + plan.opening + picked[0]
        picked[-1] += b"]" + tail
        return b",".join(picked)

    def plan(self, cohort_class: str | None, segment: int, now_us: int) -> Plan:
        found = self._plans.get((cohort_class, segment))
        if found is None:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            found = self._plans[(cohort_class, segment)] = self._make_plan(cohort_class, now_us)
        return found

    def _make_plan(self, cohort: str | None, now_us: int) -> Plan:
        fixed: list[bytes] = []
        splits: list[_Split] = []
        anonymous: list[bytes] = []
        for fragments in self.fragments.values():
            flag = fragments.flag
            # With no user the answer is fixed for every flag: the split flags give DEFAULT.
            value, reason = evaluate_reason_compiled(flag, None, cohort, now_us)
            anonymous.append(fragments.get(value, reason))
            if reason is Reason.DEFAULT:
                splits.append(
                    (
                        encode_text(flag.prefix),
                        flag.percent,
                        fragments.get(True, Reason.SPLIT),
                        fragments.get(False, Reason.SPLIT),
                    )
                )
            else:
                fixed.append(fragments.get(value, reason))
        joined = b",".join(fixed)
        return Plan(
            fixed=joined,
            opening=b"[" + joined + b"," if joined else b"[",
            splits=tuple(splits),
            anonymous=b"[" + b",".join(anonymous) + b"]",
        )
