"""The checks the operator and `kubectl flagops validate` share."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flagops.api.rollout import RolloutSpec
from flagops.api.validation import (
    RolloutClaim,
    claim_from_object,
    older_claim,
    ownership_problem,
    spec_error_message,
)

OLD = RolloutClaim("old", "uid-old", "flag", "2026-01-01T00:00:00Z")
NEW = RolloutClaim("new", "uid-new", "flag", "2026-01-02T00:00:00Z")
OTHER_FLAG = RolloutClaim("elsewhere", "uid-x", "other", "2025-01-01T00:00:00Z")


def test_the_oldest_claim_owns_the_flag() -> None:
    claims = [NEW, OLD, OTHER_FLAG]
    assert older_claim(claims, OLD) is None
    assert older_claim(claims, NEW) == OLD


def test_a_tie_on_creation_time_goes_to_the_name() -> None:
    twin = RolloutClaim("aaa", "uid-aaa", "flag", OLD.created)
    assert older_claim([OLD, twin], OLD) == twin
    assert older_claim([OLD, twin], twin) is None


def test_a_claim_missing_from_the_list_is_judged_against_the_list() -> None:
    # The operator's index may not hold `me` yet: the oldest listed rival still wins.
    assert older_claim([OLD], NEW) == OLD
    assert older_claim([NEW], OLD) is None


def test_ownership_problem_words() -> None:
    assert ownership_problem(OLD, [OLD, NEW], flag_exists=True, namespace="ns") is None
    assert ownership_problem(NEW, [OLD, NEW], flag_exists=True, namespace="ns") == (
        "FeatureFlag 'flag' is already rolled out by Rollout 'old'; one active Rollout per flag"
    )
    assert ownership_problem(OLD, [OLD], flag_exists=False, namespace="ns") == (
        "FeatureFlag 'flag' not found in namespace ns"
    )


def test_claim_from_object_is_lenient() -> None:
    obj = {
        "metadata": {"name": "r", "uid": "u", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"flagRef": {"name": "f"}},
    }
    assert claim_from_object(obj) == RolloutClaim("r", "u", "f", "2026-01-01T00:00:00Z")
    assert claim_from_object({}) == RolloutClaim("", "", "", "")


def test_spec_error_message_names_each_field() -> None:
    with pytest.raises(ValidationError) as caught:
        RolloutSpec.model_validate({"flagRef": {}, "targetStage": "NOPE"})
    message = spec_error_message(caught.value)
    assert message.startswith("spec.")
    assert "spec.flagRef.name: Field required" in message
    assert "spec.targetStage:" in message
