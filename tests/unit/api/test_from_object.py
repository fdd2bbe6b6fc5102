"""The one typed read boundary: from_object never raises and names what it could not read."""

from __future__ import annotations

from typing import Any

import pytest

from flagops.api.featureflag import FeatureFlag
from flagops.api.rollout import Rollout
from flagops.api.stages import Stage

META = {
    "name": "r",
    "namespace": "ns",
    "uid": "u1",
    "generation": 3,
    "creationTimestamp": "2026-01-01T00:00:00Z",
    "annotations": {"flagops.dev/action": "check@a1"},
}


def test_a_valid_rollout_reads_whole_with_no_problems() -> None:
    obj = {
        "metadata": META,
        "spec": {"flagRef": {"name": "f"}, "targetStage": "BETA", "unknownField": 1},
        "status": {"stage": "INTERNAL", "somethingNewer": True},
    }
    rollout = Rollout.from_object(obj)
    assert rollout.problems == {} and rollout.spec_error is None
    assert (rollout.name, rollout.namespace, rollout.uid, rollout.generation) == (
        "r",
        "ns",
        "u1",
        3,
    )
    assert rollout.created == "2026-01-01T00:00:00Z"
    assert rollout.annotations["flagops.dev/action"] == "check@a1"
    assert rollout.spec.target_stage is Stage.BETA and rollout.status.stage is Stage.INTERNAL


def test_a_bad_field_is_named_and_the_rest_still_reads() -> None:
    obj = {
        "metadata": META,
        "spec": {"flagRef": {"name": "f"}, "targetStage": "NOPE", "paused": True},
        "status": {"stage": "BETA", "consecutiveFailures": -1},
    }
    rollout = Rollout.from_object(obj)
    assert rollout.spec_error is not None and rollout.spec_error.startswith("spec.targetStage: ")
    assert rollout.problems["status"].startswith("status.consecutiveFailures: ")
    assert rollout.unreadable("spec", "targetStage") and not rollout.unreadable("spec", "paused")
    # Read as far as it goes: the good fields stay, the bad one takes its default.
    assert rollout.spec.paused is True and rollout.spec.target_stage is Stage.FULL
    assert rollout.status.stage is Stage.BETA and rollout.status.consecutive_failures == 0


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": "x", "spec": "x", "status": ["x"]},
        {"metadata": {"generation": "3"}, "spec": {"flagRef": 5}},
        {"spec": None, "status": None},
    ],
)
def test_garbage_never_raises(obj: dict[str, Any]) -> None:
    rollout = Rollout.from_object(obj)
    assert rollout.spec.flag_ref.name == "" and rollout.generation == 0
    flag = FeatureFlag.from_object(obj)
    assert flag.name == "" and flag.spec.enabled is False


def test_a_spec_that_is_no_object_is_a_problem() -> None:
    rollout = Rollout.from_object({"metadata": META, "spec": ["a"]})
    assert rollout.spec_error == "spec: not an object (list)"


def test_a_feature_flag_reads_its_key_and_names_a_bad_percent() -> None:
    flag = FeatureFlag.from_object(
        {"metadata": {"name": "f"}, "spec": {"key": "k", "rolloutPercent": 101}}
    )
    assert flag.key == "k"
    assert flag.spec_error is not None and "spec.rolloutPercent" in flag.spec_error
    assert flag.spec.rollout_percent == 0
