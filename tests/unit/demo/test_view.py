"""The demo's Rollout view reads through the typed, lenient boundary (Rollout.from_object)."""

from __future__ import annotations

from typing import Any

from flagops_devtools.demo.view import panel, snapshot

BETA: dict[str, Any] = {
    "metadata": {"name": "calendar-sync"},
    "spec": {
        "flagRef": {"name": "calendar_sync"},
        "stageDuration": "30s",
        "analysis": {"errorThreshold": 0.02},
        "healthProbe": {"integration": "calendar"},
    },
    "status": {
        "stage": "BETA",
        "phase": "Progressing",
        "stageStartedAt": "2026-12-01T10:00:00Z",
        "lastAnalysis": {
            "time": "2026-12-01T10:00:05Z",
            "errorRate": 0.01,
            "samples": 120,
            "verdict": "Pass",
        },
        "lastProbe": {"job": "probe-1", "time": "2026-12-01T10:00:05Z", "result": "Succeeded"},
        "activeProbeJob": "probe-2",
    },
}


def test_a_rollout_in_beta_is_drawn_from_its_typed_fields() -> None:
    s = snapshot(BETA, seeing=3, users=10)
    assert (s.name, s.flag, s.stage, s.phase, s.percent) == (
        "calendar-sync",
        "calendar_sync",
        "BETA",
        "Progressing",
        10,
    )
    assert (s.error_rate, s.threshold, s.samples, s.verdict) == (0.01, 0.02, 120.0, "Pass")
    assert s.probe == "Succeeded (probe running)"
    assert s.stage_duration == "30s"
    assert any("[BETA]" in line for line in panel(s))


def test_an_unreadable_status_still_draws_with_defaults() -> None:
    s = snapshot({"metadata": {"name": "x"}, "status": {"stage": "NOPE"}}, seeing=0, users=0)
    assert (s.name, s.flag, s.stage, s.phase, s.percent, s.verdict) == (
        "x",
        "",
        "-",
        "Pending",
        0,
        "-",
    )
