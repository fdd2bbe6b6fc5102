"""judge(): measurements and the newest probe become a verdict, one row per rule."""

from __future__ import annotations

import math

import pytest

from flagops.api.rollout import Verdict
from flagops.rollouts.judge import Measurement, judge
from flagops.rollouts.model import ProbeOutcome
from flagops.rollouts.queries import AnalysisConfig

CONFIG = AnalysisConfig(
    error_rate_query="e",
    sample_count_query="s",
    error_threshold=0.05,
    min_sample_size=100,
    integration="calendar_sync",
    flag="f",
    namespace="ns",
)
NAN = math.nan


@pytest.mark.parametrize(
    ("measured", "probe", "verdict", "words"),
    [
        (Measurement(500, 0.01, queries=2), None, Verdict.PASS, "error rate 1.00% over 500"),
        (Measurement(500, 0.01), ProbeOutcome.PASSED, Verdict.PASS, "<= threshold 5.00%"),
        (Measurement(500, 0.05), None, Verdict.PASS, "<= threshold"),  # the threshold passes
        (Measurement(500, 0.06), None, Verdict.FAIL, "6.00% over 500 operations > threshold"),
        (Measurement(500, 0.0), ProbeOutcome.FAILED, Verdict.FAIL, "newest health probe failed"),
        # A failed probe outweighs even a Prometheus that did not answer.
        (Measurement(None, None, "down"), ProbeOutcome.FAILED, Verdict.FAIL, "probe failed"),
        (Measurement(None, None, "Prometheus unreachable"), None, Verdict.ERROR, "unreachable"),
        (Measurement(None, None), None, Verdict.INCONCLUSIVE, "waiting for samples: 0 of 100"),
        (Measurement(99, 0.0), None, Verdict.INCONCLUSIVE, "waiting for samples: 99 of 100"),
        (Measurement(NAN, 0.0), None, Verdict.INCONCLUSIVE, "NaN, counted as 0 of 100"),
        (Measurement(100, None), None, Verdict.INCONCLUSIVE, "error-rate query returned no data"),
        (Measurement(100, NAN), None, Verdict.INCONCLUSIVE, "returned NaN"),
        (
            Measurement(500, 0.0),
            ProbeOutcome.RUNNING,
            Verdict.INCONCLUSIVE,
            "waiting for a health probe result (running)",
        ),
        (Measurement(500, 0.0), ProbeOutcome.NONE, Verdict.INCONCLUSIVE, "(none)"),
    ],
)
def test_judge(
    measured: Measurement, probe: ProbeOutcome | None, verdict: Verdict, words: str
) -> None:
    result = judge(CONFIG, measured, probe)
    assert result.verdict is verdict
    assert words in result.message
    assert result.queries == measured.queries


def test_nan_is_recorded_as_no_value() -> None:
    result = judge(CONFIG, Measurement(NAN, NAN), None)
    assert (result.samples, result.error_rate) == (None, None)
    result = judge(CONFIG, Measurement(500, 0.01), None)
    assert (result.samples, result.error_rate) == (500, 0.01)
