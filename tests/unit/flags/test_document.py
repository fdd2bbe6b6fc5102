"""The flags.json document: canonical, byte-identical, self-checking."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from flagops.flags import FlagState, build_document, canonical_json, parse_document, read_document
from flagops.flags.document import revision_of


def _state(**overrides: Any) -> dict[str, Any]:
    state: dict[str, Any] = {
        "enabled": True,
        "rolloutPercent": 10,
        "allowedCohorts": ["beta", "internal"],
        "startDate": None,
        "endDate": None,
        "stage": "BETA",
        "metadata": {},
    }
    state.update(overrides)
    return state


def test_canonical_json_is_sorted_and_compact() -> None:
    assert (
        canonical_json({"b": 1, "a": [1, {"d": None, "c": "é"}]})
        == '{"a":[1,{"c":"é","d":null}],"b":1}'
    )


def test_document_matches_the_design_example() -> None:
    text, revision = build_document({"calendar_sync": _state()})
    flags_obj = {"calendar_sync": _state()}
    assert revision == hashlib.sha256(canonical_json(flags_obj).encode()).hexdigest()
    assert json.loads(text) == {"schema": 1, "revision": revision, "flags": flags_obj}
    assert text == canonical_json(json.loads(text))


def test_unchanged_state_gives_byte_identical_text() -> None:
    a: dict[str, FlagState | dict[str, Any]] = {
        "b_flag": _state(rolloutPercent=50),
        "a_flag": FlagState.model_validate(_state()),
    }
    b: dict[str, FlagState | dict[str, Any]] = {
        "a_flag": _state(),
        "b_flag": FlagState(
            enabled=True, rolloutPercent=50, allowedCohorts=("beta", "internal"), stage="BETA"
        ),
    }
    assert build_document(a) == build_document(b)
    assert (
        build_document(a)[0].encode() == build_document(dict(reversed(list(a.items()))))[0].encode()
    )


def test_defaults_are_written_out() -> None:
    text, _ = build_document({"k": {"enabled": False, "rolloutPercent": 0}})
    assert json.loads(text)["flags"]["k"] == {
        "enabled": False,
        "rolloutPercent": 0,
        "allowedCohorts": [],
        "startDate": None,
        "endDate": None,
        "stage": None,
        "metadata": {},
    }


def test_any_change_changes_the_revision() -> None:
    base = build_document({"k": _state()})[1]
    for change in (
        {"rolloutPercent": 11},
        {"enabled": False},
        {"allowedCohorts": ["beta"]},
        {"endDate": "2027-01-01T00:00:00Z"},
        {"stage": "FULL"},
        {"metadata": {"owner": "team-a"}},
    ):
        assert build_document({"k": _state(**change)})[1] != base, change
    assert build_document({"k2": _state()})[1] != base


def test_round_trip() -> None:
    flags = {
        "calendar_sync": _state(startDate="2026-06-01T12:00:00Z", metadata={"owner": "josé"}),
        "x": _state(),
    }
    text, revision = build_document(flags)
    assert parse_document(text) == flags
    assert read_document(text.encode()) == (revision, flags)


def test_build_rejects_invalid_flags() -> None:
    with pytest.raises(ValueError, match=r"flag 'k': rolloutPercent"):
        build_document({"k": _state(rolloutPercent=101)})
    with pytest.raises(ValueError, match=r"flag 'k': surprise"):
        build_document({"k": {**_state(), "surprise": 1}})
    with pytest.raises(ValueError, match="non-empty"):
        build_document({"": _state()})


def _doc(flags_obj: Any, **top: Any) -> str:
    doc = {
        "schema": 1,
        "revision": revision_of(flags_obj) if isinstance(flags_obj, dict) else "x",
        "flags": flags_obj,
    }
    doc.update(top)
    return json.dumps(doc)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "not valid JSON"),
        ("{", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (_doc({}, schema=2), "unsupported schema"),
        (_doc({}, schema=True), "unsupported schema"),
        (json.dumps({"revision": revision_of({}), "flags": {}}), "unsupported schema"),
        (_doc([]), "no 'flags' object"),
        (json.dumps({"schema": 1, "flags": {}}), "no 'revision' string"),
        (_doc({"k": _state()}, revision="0" * 64), "revision does not match"),
        (_doc({"k": "on"}), "flag 'k': must be a JSON object"),
        (_doc({"k": _state(rolloutPercent=101)}), "flag 'k': rolloutPercent"),
        (_doc({"k": _state(rolloutPercent=-1)}), "flag 'k': rolloutPercent"),
        (_doc({"k": _state(rolloutPercent=10.5)}), "flag 'k': rolloutPercent"),
        (_doc({"k": _state(rolloutPercent="10")}), "flag 'k': rolloutPercent"),
        (_doc({"k": _state(rolloutPercent=True)}), "flag 'k': rolloutPercent"),
        (_doc({"k": _state(enabled="yes")}), "flag 'k': enabled"),
        (_doc({"k": {"rolloutPercent": 10}}), "flag 'k': enabled"),
        (_doc({"k": _state(allowedCohorts=[1])}), "flag 'k': allowedCohorts"),
        (_doc({"k": _state(allowedCohorts="beta")}), "flag 'k': allowedCohorts"),
        (_doc({"k": _state(startDate="2026-06-01")}), "flag 'k': startDate"),
        (_doc({"k": _state(endDate="2026-06-01T00:00:00")}), "flag 'k': endDate"),
        (_doc({"k": _state(endDate=17)}), "flag 'k': endDate"),
        (_doc({"k": _state(stage=3)}), "flag 'k': stage"),
        (_doc({"k": _state(metadata=[])}), "flag 'k': metadata"),
        (_doc({"": _state()}), "non-empty"),
    ],
)
def test_parse_rejects_with_a_clear_message(text: str | bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        parse_document(text)
    # the message names the problem, never the offending value
    assert "yes" not in str(info.value)
    assert "2026-06-01" not in str(info.value)


def test_parse_ignores_fields_from_a_newer_operator() -> None:
    flags_obj = {"k": {**_state(), "variant": "blue"}}
    assert parse_document(_doc(flags_obj)) == {"k": _state()}
