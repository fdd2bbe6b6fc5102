"""flagops_devtools.demo.reach: matching the operator's stage decisions with the app's arrivals."""

from __future__ import annotations

from typing import Any

from flagops_devtools.demo.reach import PROMISE_SECONDS, reach


def arrival(at: float, stage: str | None) -> dict[str, Any]:
    return {"revision": f"r{at}", "at": at, "flags": {"f": {"enabled": True, "stage": stage}}}


def test_each_decision_meets_the_first_later_arrival_of_its_stage() -> None:
    arrivals = [
        arrival(100.0, "DISABLED"),  # adoption, long before the rollback
        arrival(110.2, "INTERNAL"),
        arrival(130.1, "BETA"),
        arrival(140.3, "DISABLED"),
    ]
    found = reach("f", {"INTERNAL": 110.0, "BETA": 130.0, "DISABLED": 140.0}, arrivals)
    assert [(r.stage, round(r.seconds or -1, 3)) for r in found] == [
        ("INTERNAL", 0.2),
        ("BETA", 0.1),
        ("DISABLED", 0.3),  # the rollback's, not the adoption's
    ]
    assert all(r.kept for r in found)


def test_a_decision_never_seen_or_late_breaks_the_promise() -> None:
    arrivals = [arrival(111.5, "INTERNAL")]
    late, missing = reach("f", {"INTERNAL": 110.0, "BETA": 120.0}, arrivals)
    assert late.seconds is not None and late.seconds > PROMISE_SECONDS and not late.kept
    assert missing.seconds is None and not missing.kept
    assert "not seen" in missing.line() and "over 1 s" in late.line()


def test_an_arrival_of_another_flag_or_stage_does_not_count() -> None:
    other = {"revision": "x", "at": 110.1, "flags": {"g": {"stage": "INTERNAL"}}}
    (item,) = reach("f", {"INTERNAL": 110.0}, [other, arrival(110.2, "BETA")])
    assert item.seconds is None
