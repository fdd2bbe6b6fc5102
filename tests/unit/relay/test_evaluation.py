"""The relay's precomputed OFREP answers equal the SDK's own evaluation."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from flagops.flags.evaluate import compile_flag, evaluate_reason_compiled
from flagops.relay.evaluation import RevisionView

NOW_US = 1_780_000_000_000_000  # 2026-05-28
HOUR_US = 3_600_000_000
COHORTS = ["beta", "internal", "all", "staff"]


def _date(offset_hours: int | None) -> str | None:
    if offset_hours is None:
        return None
    from datetime import UTC, datetime

    moment = datetime.fromtimestamp((NOW_US + offset_hours * HOUR_US) / 1e6, UTC)
    return moment.isoformat().replace("+00:00", "Z")


flag_states = st.fixed_dictionaries(
    {
        "enabled": st.booleans(),
        "rolloutPercent": st.sampled_from([0, 1, 10, 25, 50, 75, 99, 100]),
        "allowedCohorts": st.lists(st.sampled_from(COHORTS), unique=True, max_size=2),
        "startDate": st.sampled_from([None, -2, 2]).map(_date),
        "endDate": st.sampled_from([None, -1, 3]).map(_date),
        "stage": st.sampled_from([None, "BETA", "FULL"]),
        "metadata": st.just({}),
    }
)


def _answers(body: bytes) -> dict[str, tuple[bool, str, str]]:
    return {f["key"]: (f["value"], f["reason"], f["variant"]) for f in orjson.loads(body)}


@settings(max_examples=200, deadline=None)
@given(
    flags=st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True), flag_states, min_size=1, max_size=12
    ),
    users=st.lists(st.one_of(st.none(), st.text(max_size=12)), min_size=1, max_size=8),
    cohort=st.one_of(st.none(), st.sampled_from([*COHORTS, "nobody"])),
    hours=st.sampled_from([-3, 0, 1, 2, 5]),
)
def test_bulk_and_single_answers_equal_the_sdk(
    flags: dict[str, dict[str, Any]], users: list[str | None], cohort: str | None, hours: int
) -> None:
    view = RevisionView("rev", flags)
    now = NOW_US + hours * HOUR_US
    compiled = {key: compile_flag(key, state) for key, state in flags.items()}
    for user in users:
        cohort_class = view.cohort_class(cohort)
        got = _answers(view.evaluate_all(user, cohort_class, view.segment(now), now))
        for key, flag in compiled.items():
            value, reason = evaluate_reason_compiled(flag, user, cohort, now)
            expected = (value, reason.value, "on" if value else "off")
            assert got[key] == expected, key
            single = orjson.loads(view.evaluate_one(key, user, cohort, now) or b"null")
            assert (single["value"], single["reason"], single["variant"]) == expected
        assert len(got) == len(flags)


def test_fragments_carry_stage_and_revision() -> None:
    view = RevisionView(
        "abc",
        {
            "a": {"enabled": True, "rolloutPercent": 100, "stage": "FULL"},
            "b": {"enabled": False, "rolloutPercent": 0, "stage": None},
        },
    )
    body = orjson.loads(view.evaluate_all("u", None, view.segment(NOW_US), NOW_US))
    assert body == [
        {
            "key": "a",
            "value": True,
            "reason": "STATIC",
            "variant": "on",
            "metadata": {"revision": "abc", "stage": "FULL"},
        },
        {
            "key": "b",
            "value": False,
            "reason": "DISABLED",
            "variant": "off",
            "metadata": {"revision": "abc"},
        },
    ]
    assert view.evaluate_one("missing", "u", None, NOW_US) is None


def test_head_and_tail_wrap_the_array_in_every_shape() -> None:
    shapes: list[dict[str, dict[str, Any]]] = [
        {},
        {"fixed": {"enabled": True, "rolloutPercent": 100}},
        {"split": {"enabled": True, "rolloutPercent": 50}},
        {
            "fixed": {"enabled": True, "rolloutPercent": 100},
            "split": {"enabled": True, "rolloutPercent": 50},
            "split2": {"enabled": True, "rolloutPercent": 5},
        },
    ]
    for flags in shapes:
        view = RevisionView("r", flags)
        for user in (None, "u1"):
            body = view.evaluate_all(user, None, 0, NOW_US, b'{"flags":', b"}")
            assert len(orjson.loads(body)["flags"]) == len(flags)


def test_a_window_edge_changes_the_answer_without_a_new_revision() -> None:
    flags = {"w": {"enabled": True, "rolloutPercent": 100, "startDate": _date(1)}}
    view = RevisionView("r", flags)
    before, after = NOW_US, NOW_US + 2 * HOUR_US
    assert view.segment(before) != view.segment(after)
    assert _answers(view.evaluate_all("u", None, view.segment(before), before))["w"][0] is False
    assert _answers(view.evaluate_all("u", None, view.segment(after), after))["w"][0] is True
