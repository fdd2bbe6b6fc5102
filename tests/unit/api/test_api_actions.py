from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flagops.api.actions import (
    ACTION_ANNOTATION,
    Action,
    ActionVerb,
    format_action,
    new_action_id,
    parse_action,
)


def test_annotation_name() -> None:
    assert ACTION_ANNOTATION == "flagops.dev/action"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("advance@1", Action(ActionVerb.ADVANCE, "1")),
        ("advance:force@id-2", Action(ActionVerb.ADVANCE, "id-2", force=True)),
        (
            "advance:force:hotfix approved@7",
            Action(ActionVerb.ADVANCE, "7", reason="hotfix approved", force=True),
        ),
        ("pause:too many errors@8", Action(ActionVerb.PAUSE, "8", reason="too many errors")),
        ("advance:forceful@9", Action(ActionVerb.ADVANCE, "9", reason="forceful")),
        (
            "rollback:see ticket@ops:42@a.b_c",
            Action(ActionVerb.ROLLBACK, "a.b_c", "see ticket@ops:42"),
        ),
        ("  resume@x  ", Action(ActionVerb.RESUME, "x")),
        ("check@1700000000000-ab12cd", Action(ActionVerb.CHECK, "1700000000000-ab12cd")),
        ("retry:after fix@r1", Action(ActionVerb.RETRY, "r1", reason="after fix")),
    ],
)
def test_parse_action(value: str, expected: Action) -> None:
    assert parse_action(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("advance", "no '@<id>' found"),
        ("advance@", "id ''"),
        ("advance@has space", "id 'has space'"),
        ("advance@-leading", "id '-leading'"),
        ("jump@1", "unknown verb 'jump'"),
        ("Advance@1", "unknown verb 'Advance'"),
        ("@1", "unknown verb ''"),
        ("pause:@1", "empty reason"),
        ("advance:force:@1", "empty reason after 'force:'"),
        ("pause:force@1", "only 'advance' can be forced"),
        ("pause:" + "x" * 2000 + "@1", "longer than 1024"),
    ],
)
def test_parse_action_rejects(value: str, message: str) -> None:
    with pytest.raises(ValueError, match="invalid action") as error:
        parse_action(value)
    assert message in str(error.value)
    assert len(str(error.value)) < 400


def test_format_action() -> None:
    assert format_action(ActionVerb.ADVANCE, "1", force=True) == "advance:force@1"
    assert format_action("pause", "2", reason="too many errors") == "pause:too many errors@2"
    assert format_action("advance", "3", reason="ok", force=True) == "advance:force:ok@3"
    assert str(Action(ActionVerb.CHECK, "4")) == "check@4"
    with pytest.raises(ValueError, match="id"):
        format_action("pause", "bad id")


def test_new_action_ids_are_valid_and_distinct() -> None:
    ids = {new_action_id() for _ in range(50)}
    assert len(ids) == 50
    for action_id in ids:
        assert parse_action(f"check@{action_id}").id == action_id


@given(
    verb=st.sampled_from(list(ActionVerb)),
    reason=st.one_of(
        st.none(),
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
            min_size=1,
            max_size=40,
        ).filter(lambda r: not r.startswith("force")),
    ),
    action_id=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
)
def test_format_parse_round_trip(verb: ActionVerb, reason: str | None, action_id: str) -> None:
    action = parse_action(format_action(verb, action_id, reason=reason))
    assert action == Action(verb, action_id, reason=reason)
