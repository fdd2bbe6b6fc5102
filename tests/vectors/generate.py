"""Generate tests/vectors/evaluation.json, the evaluation vectors every SDK must pass.

Expected values come from a reference written here, independent of flagops:
a pure-Python MurmurHash3 x86_32 and a hand-rolled RFC 3339 parser, so a bug in
the SDK (or in the mmh3 binding it uses) shows up as a failing vector.

    python tests/vectors/generate.py           # rewrite the JSON
    python tests/vectors/generate.py --check   # exit 1 if the committed JSON is stale
"""

from __future__ import annotations

import calendar
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("evaluation.json")
NOW = "2026-06-01T12:00:00Z"


# -- reference MurmurHash3 x86_32 (Austin Appleby's algorithm, unsigned result) ---------


def murmur3_x86_32(data: bytes, seed: int = 0) -> int:
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF

    def rotl(x: int, r: int) -> int:
        return ((x << r) | (x >> (32 - r))) & mask

    h = seed & mask
    nblocks = len(data) // 4
    for i in range(nblocks):
        k = int.from_bytes(data[4 * i : 4 * i + 4], "little")
        k = rotl((k * c1) & mask, 15)
        h ^= (k * c2) & mask
        h = (rotl(h, 13) * 5 + 0xE6546B64) & mask
    tail = data[4 * nblocks :]
    k = 0
    for shift, byte in enumerate(tail):
        k |= byte << (8 * shift)
    if tail:
        k = rotl((k * c1) & mask, 15)
        h ^= (k * c2) & mask
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


def ref_bucket(key: str, user_id: str) -> int:
    return murmur3_x86_32(f"{key}:{user_id}".encode()) % 100 + 1


# Published reference values of MurmurHash3 x86_32 (seed 0 unless noted).
_MURMUR_KNOWN = [
    (b"", 0, 0),
    (b"", 1, 0x514E28B7),
    (b"hello", 0, 0x248BFA47),
    (b"Hello, world!", 1234, 0xFAF6CDB3),
    (b"The quick brown fox jumps over the lazy dog", 0, 0x2E4FF723),
]

# Buckets Unleash's Python SDK reports: UnleashClient.utils.normalized_hash(user, key)
# (6.9.1); the unit tests recompute them with UnleashClient when it is installed.
UNLEASH_KNOWN = [
    ("calendar_sync", "user-1", 73),
    ("calendar_sync", "user-2", 3),
    ("calendar_sync", "a", 78),
    ("calendar_sync", "b", 39),
    ("calendar_sync", "josé", 63),
    ("calendar_sync", "用户", 75),
    ("calendar_sync", "😀", 68),
    ("calendar_sync", "", 56),
    ("flag12", "", 19),
    ("flag16", "", 11),
]


# -- reference RFC 3339 -> epoch microseconds --------------------------------------------

_DATE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|([+-])(\d{2}):(\d{2}))"
)


def ref_epoch_us(text: str) -> int:
    m = _DATE.fullmatch(text)
    if m is None:
        raise ValueError(text)
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    fraction = (m.group(7) or "").ljust(6, "0")[:6]
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if m.group(8) != "Z":
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        seconds -= offset if m.group(9) == "+" else -offset
    return seconds * 1_000_000 + int(fraction)


# -- reference evaluation (DESIGN.md steps 3-6) ------------------------------------------


def ref_evaluate(
    state: dict[str, Any], key: str, user_id: str | None, cohort: str | None, now: str
) -> bool:
    if not state["enabled"]:
        return False
    now_us = ref_epoch_us(now)
    if state["startDate"] is not None and now_us < ref_epoch_us(state["startDate"]):
        return False
    if state["endDate"] is not None and now_us >= ref_epoch_us(state["endDate"]):
        return False
    cohorts = state["allowedCohorts"]
    if "all" in cohorts or (cohort is not None and cohort in cohorts):
        return True
    percent: int = state["rolloutPercent"]
    if percent == 100:
        return True
    if percent == 0 or user_id is None:
        return False
    return ref_bucket(key, user_id) <= percent


# -- the cases -----------------------------------------------------------------------------


def flag(
    *,
    enabled: bool = True,
    percent: int = 0,
    cohorts: list[str] | None = None,
    start: str | None = None,
    end: str | None = None,
    stage: str | None = None,
) -> dict[str, Any]:
    return {
        "enabled": enabled,
        "rolloutPercent": percent,
        "allowedCohorts": cohorts or [],
        "startDate": start,
        "endDate": end,
        "stage": stage,
        "metadata": {},
    }


USERS: list[str | None] = [
    "user-1",
    "user-2",
    "user-42",
    "alice@example.com",
    "0",
    "josé",
    "Zoë",
    "用户",
    "ユーザー",
    "😀",
    "👩‍💻",
    "",
    None,
]
PERCENTS = [0, 1, 10, 25, 50, 75, 99, 100]


def cases() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(
        name: str,
        state: dict[str, Any],
        key: str,
        user: str | None,
        cohort: str | None = None,
        now: str = NOW,
    ) -> None:
        case: dict[str, Any] = {
            "name": name,
            "state": state,
            "key": key,
            "userId": user,
            "cohort": cohort,
            "now": now,
            "expected": ref_evaluate(state, key, user, cohort, now),
        }
        out.append(case)

    # Step 3: a disabled flag is off whatever else it says.
    for cohorts, percent in ((["all"], 100), (["beta"], 100), ([], 50)):
        for user, cohort in (("user-1", "beta"), (None, None), ("josé", "other")):
            add(
                "disabled", flag(enabled=False, percent=percent, cohorts=cohorts), "k", user, cohort
            )

    # Step 3: the [startDate, endDate) window, edges exact.
    start, end = "2026-06-01T12:00:00Z", "2026-07-01T00:00:00Z"
    windows = {
        "start only": (start, None),
        "end only": (None, end),
        "start and end": (start, end),
        "no dates": (None, None),
    }
    moments = {
        "one second before start": "2026-06-01T11:59:59Z",
        "one microsecond before start": "2026-06-01T11:59:59.999999Z",
        "exactly at start": start,
        "at start, other offset": "2026-06-01T14:00:00+02:00",
        "one second after start": "2026-06-01T12:00:01Z",
        "one second before end": "2026-06-30T23:59:59Z",
        "exactly at end": end,
        "at end, other offset": "2026-06-30T19:00:00-05:00",
        "one second after end": "2026-07-01T00:00:01Z",
    }
    for window_name, (s, e) in windows.items():
        for moment_name, now in moments.items():
            for percent, cohorts, user, cohort in (
                (100, [], "user-1", None),
                (0, ["all"], None, None),
                (25, ["beta"], "user-2", "beta"),
            ):
                state = flag(percent=percent, cohorts=cohorts, start=s, end=e)
                add(f"window {window_name}, {moment_name}", state, "k", user, cohort, now)
    # Dates written with fractions and offsets, and a lowercase-free zone form.
    add(
        "window start with fraction, now just before",
        flag(percent=100, start="2026-06-01T12:00:00.5Z"),
        "k",
        "u",
        now="2026-06-01T12:00:00.499999Z",
    )
    add(
        "window start with fraction, now at it",
        flag(percent=100, start="2026-06-01T12:00:00.500Z"),
        "k",
        "u",
        now="2026-06-01T12:00:00.5Z",
    )

    # Step 4: cohorts, including "all" and non-members.
    for cohorts in (["beta", "internal"], ["all"], ["beta", "all"], []):
        for cohort in ("beta", "internal", "other", "", None):
            for percent, user in ((0, "user-1"), (0, None), (25, "user-2"), (25, "user-1")):
                add(
                    f"cohorts {cohorts}, cohort {cohort!r}, percent {percent}",
                    flag(percent=percent, cohorts=cohorts),
                    "calendar_sync",
                    user,
                    cohort,
                )

    # Steps 5 and 6: percent edges and bucketing, ASCII, non-ASCII, empty and missing users.
    for percent in PERCENTS:
        for user in USERS:
            add(f"percent {percent}", flag(percent=percent), "calendar_sync", user)
    for key in ("meal_plan_v2", "nutrition.insights", "coaching-chat", "flag12", "flag16"):
        for percent in (1, 25, 99):
            for user in USERS:
                add(f"percent {percent}, key {key}", flag(percent=percent), key, user)

    # Hand-picked users whose Unleash buckets are known: enabled exactly at the bucket.
    for key, user, known in UNLEASH_KNOWN:
        for percent in (known - 1, known):
            if 0 <= percent <= 100:
                case_state = flag(percent=percent)
                add(f"unleash bucket {known}, percent {percent}", case_state, key, user)
                out[-1]["unleashBucket"] = known

    # Seeded random users and percents, for breadth.
    rng = random.Random(20260601)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_éü中文🙂"
    for i in range(60):
        user = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24)))
        percent = rng.randint(1, 99)
        add(f"random {i}", flag(percent=percent), rng.choice(["calendar_sync", "k"]), user)
    return out


def render() -> str:
    for data, seed, expected in _MURMUR_KNOWN:
        assert murmur3_x86_32(data, seed) == expected, (data, seed)
    for key, user, known in UNLEASH_KNOWN:
        assert ref_bucket(key, user) == known, (key, user)
    doc = {
        "description": "flagops evaluation vectors (DESIGN.md, Evaluation); "
        "generated by tests/vectors/generate.py, do not edit",
        "cases": cases(),
    }
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    count = len(json.loads(text)["cases"])
    print(f"wrote {OUT}: {count} cases")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
