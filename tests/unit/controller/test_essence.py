"""The lean diff base gives kopf the same essence as its own, without copying status."""

from __future__ import annotations

import copy
from typing import Any, cast

import kopf
import pytest

from flagops.controller.essence import LeanDiffBaseStorage, lean

ROLLOUT: dict[str, Any] = {
    "apiVersion": "flagops.dev/v1alpha1",
    "kind": "Rollout",
    "metadata": {
        "name": "calendar-sync",
        "namespace": "mealplan",
        "uid": "u-1",
        "resourceVersion": "42",
        "labels": {"team": "calendar"},
        "annotations": {
            "flagops.dev/action": '{"id": "a1", "type": "pause"}',
            "kopf.zalando.org/last-handled-configuration": "{}",
            "kubectl.kubernetes.io/last-applied-configuration": "{...}",
        },
        "managedFields": [{"manager": "flagops", "fieldsV1": {"f:status": {"f:phase": {}}}}],
        "finalizers": ["flagops.dev/rollout"],
    },
    "spec": {"flagRef": {"name": "calendar-sync"}, "internalCohorts": ["staff"]},
    "status": {"phase": "Progressing", "healthHistory": [{"verdict": "Pass"}] * 20},
}


def as_body(raw: dict[str, Any]) -> kopf.Body:
    return kopf.Body(cast(kopf.RawBody, copy.deepcopy(raw)))


@pytest.mark.parametrize(
    "raw",
    [
        ROLLOUT,
        {**ROLLOUT, "status": None},
        {key: value for key, value in ROLLOUT.items() if key != "status"},
        {**ROLLOUT, "metadata": {"name": "bare"}},
    ],
    ids=["full", "null-status", "no-status", "bare-metadata"],
)
def test_essence_equals_kopfs_own(raw: dict[str, Any]) -> None:
    body = as_body(raw)
    assert LeanDiffBaseStorage().build(body=body) == kopf.AnnotationsDiffBaseStorage().build(
        body=body
    )


def test_lean_body_leaves_out_status_and_managed_fields_without_touching_the_object() -> None:
    raw = copy.deepcopy(ROLLOUT)
    stripped = lean(kopf.Body(cast(kopf.RawBody, raw)))
    assert "status" not in stripped
    assert "managedFields" not in stripped["metadata"]
    assert stripped["spec"] is raw["spec"]  # shared, not copied
    assert raw == ROLLOUT


def test_status_fields_a_handler_watches_are_still_picked() -> None:
    body = as_body(ROLLOUT)
    essence = LeanDiffBaseStorage().build(body=body, extra_fields=["status.phase"])
    assert essence["status"] == {"phase": "Progressing"}
