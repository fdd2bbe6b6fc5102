"""The SDK over every committed evaluation vector, and the vectors' own provenance."""

from __future__ import annotations

import importlib.util
import json
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import mmh3
import pytest

from flagops.flags import FeatureFlags, build_document, evaluate
from flagops.flags.evaluate import Reason, evaluate_reason, parse_rfc3339

VECTORS_DIR = Path(__file__).resolve().parents[2] / "vectors"
CASES: list[dict[str, Any]] = json.loads(
    (VECTORS_DIR / "evaluation.json").read_text(encoding="utf-8")
)["cases"]


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "flag_vectors_generate", VECTORS_DIR / "generate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _ids(case: dict[str, Any]) -> str:
    return f"{case['name']}|{case['key']}|{case['userId']!r}|{case['cohort']!r}|{case['now']}"


def test_vectors_cover_the_brief() -> None:
    assert len(CASES) >= 300
    users = {c["userId"] for c in CASES}
    assert {None, "", "josé", "用户", "😀"} <= users
    percents = {c["state"]["rolloutPercent"] for c in CASES}
    assert {0, 1, 10, 25, 50, 99, 100} <= percents
    assert any(not c["state"]["enabled"] for c in CASES)
    assert any("all" in c["state"]["allowedCohorts"] for c in CASES)
    names = {c["name"] for c in CASES}
    assert "window start and end, exactly at start" in names
    assert "window start and end, exactly at end" in names
    assert {True, False} == {c["expected"] for c in CASES}


def test_committed_vectors_are_what_the_generator_prints() -> None:
    assert _generator().main(["--check"]) == 0


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_evaluate_matches_vector(case: dict[str, Any]) -> None:
    now = parse_rfc3339(case["now"])
    got = evaluate(case["state"], case["key"], case["userId"], case["cohort"], now=now)
    assert got is case["expected"]


def test_client_matches_every_vector(tmp_path: Path, make_client: Any) -> None:
    # The client inlines the evaluation for speed, so it is checked separately.
    path = tmp_path / "flags.json"
    failures = []
    for case in CASES:
        text, _ = build_document({case["key"]: case["state"]})
        path.write_text(text, encoding="utf-8")
        now = parse_rfc3339(case["now"])
        client: FeatureFlags = make_client(path, reload_interval=0, clock=lambda now=now: now)
        if client.is_enabled(case["key"], case["userId"], case["cohort"]) is not case["expected"]:
            failures.append(_ids(case))
        client.close()
    assert failures == []


def test_client_details_match_every_vector(tmp_path: Path, make_client: Any) -> None:
    # details() (what the OpenFeature provider answers) takes the uninlined path.
    path = tmp_path / "flags.json"
    failures = []
    for case in CASES:
        text, revision = build_document({case["key"]: case["state"]})
        path.write_text(text, encoding="utf-8")
        now = parse_rfc3339(case["now"])
        client: FeatureFlags = make_client(path, reload_interval=0, clock=lambda now=now: now)
        details = client.details(case["key"], case["userId"], case["cohort"])
        expected = evaluate_reason(case["state"], case["key"], case["userId"], case["cohort"], now)
        got = None if details is None else (details.value, details.reason, details.revision)
        if got != (*expected, revision) or details is None or details.overridden:
            failures.append(_ids(case))
        client.close()
    assert failures == []


def test_reference_murmur_agrees_with_mmh3() -> None:
    gen = _generator()
    samples = [
        b"",
        b"a",
        b"ab",
        b"abc",
        b"abcd",
        b"abcde",
        "josé:用户😀".encode(),
        bytes(range(256)),
    ]
    for data in samples:
        for seed in (0, 1, 0xDEADBEEF):
            assert gen.murmur3_x86_32(data, seed) == mmh3.hash(data, seed, signed=False)


def test_known_unleash_buckets_match_unleash_client() -> None:
    utils = pytest.importorskip("UnleashClient.utils")
    gen = _generator()
    for key, user, known in gen.UNLEASH_KNOWN:
        assert utils.normalized_hash(user, key, normalizer=100) == known
    unleash_cases = [c for c in CASES if "unleashBucket" in c]
    assert len(unleash_cases) >= 10
    for case in unleash_cases:
        assert utils.normalized_hash(case["userId"], case["key"]) == case["unleashBucket"]


def test_evaluate_defaults_now_to_the_current_time() -> None:
    past = {
        "enabled": True,
        "rolloutPercent": 100,
        "allowedCohorts": [],
        "endDate": "2000-01-01T00:00:00Z",
        "startDate": None,
    }
    future = dict(past, endDate=None, startDate="2999-01-01T00:00:00Z")
    assert evaluate(past, "k", "u") is False
    assert evaluate(future, "k", "u") is False
    assert evaluate(dict(past, endDate=None), "k", "u") is True


def test_evaluate_rejects_a_naive_now() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate({"enabled": True, "rolloutPercent": 100}, "k", "u", now=datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "text",
    [
        "2026-06-01",
        "2026-06-01T12:00:00",
        "2026-06-01 12:00:00Z",
        "2026-13-01T00:00:00Z",
        "yesterday",
        "",
    ],
)
def test_parse_rfc3339_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339(text)


def test_parse_rfc3339_accepts_z_and_offsets() -> None:
    assert parse_rfc3339("2026-06-01T12:00:00Z") == parse_rfc3339("2026-06-01T14:00:00+02:00")
    assert parse_rfc3339("2026-06-01t12:00:00.250z").microsecond == 250000


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_evaluate_reason_agrees_with_evaluate(case: dict[str, Any]) -> None:
    now = parse_rfc3339(case["now"])
    value, reason = evaluate_reason(
        case["state"], case["key"], case["userId"], case["cohort"], now=now
    )
    assert value is case["expected"]
    state = case["state"]
    if not state["enabled"]:
        assert reason is Reason.DISABLED
    elif value and case["cohort"] is None and "all" not in state["allowedCohorts"]:
        assert reason in {Reason.STATIC, Reason.SPLIT}


def test_evaluate_reason_names_each_step() -> None:
    now = parse_rfc3339("2026-01-01T00:00:00Z")
    on = {"enabled": True, "rolloutPercent": 50, "allowedCohorts": ["beta"]}
    assert evaluate_reason({**on, "enabled": False}, "k", "u", None, now)[1] is Reason.DISABLED
    late = {**on, "endDate": "2025-01-01T00:00:00Z"}
    assert evaluate_reason(late, "k", "u", "beta", now) == (False, Reason.DISABLED)
    assert evaluate_reason(on, "k", "u", "beta", now) == (True, Reason.TARGETING_MATCH)
    full = {**on, "rolloutPercent": 100}
    assert evaluate_reason(full, "k", None, None, now) == (True, Reason.STATIC)
    assert evaluate_reason({**on, "rolloutPercent": 0}, "k", "u", None, now) == (
        False,
        Reason.SPLIT,
    )
    assert evaluate_reason(on, "k", None, None, now) == (False, Reason.DEFAULT)
    assert evaluate_reason(on, "k", "u", None, now)[1] is Reason.SPLIT
