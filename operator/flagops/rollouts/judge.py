"""Judging: a measurement and the newest probe become a verdict. Pure.

DESIGN "Analysis and decisions": Error when Prometheus gave no answer,
Inconclusive without enough samples, Fail above the threshold or on a failed
probe, Pass otherwise (with the probe, when configured, passed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flagops.api.rollout import Verdict
from flagops.rollouts.model import ProbeOutcome
from flagops.rollouts.queries import AnalysisConfig


@dataclass(frozen=True)
class Measurement:
    """The two values of one analysis as Prometheus gave them (NaN stays NaN; None is no
    data), or `failure` saying why there are none."""

    samples: float | None
    error_rate: float | None
    failure: str | None = None
    queries: int = 0  # Prometheus requests actually sent


@dataclass(frozen=True)
class AnalysisResult:
    verdict: Verdict
    error_rate: float | None
    samples: float | None
    message: str
    queries: int = 0  # Prometheus requests actually sent


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _percent(value: float) -> str:
    return f"{value * 100:.2f}%"


def judge(
    config: AnalysisConfig, measured: Measurement, probe: ProbeOutcome | None = None
) -> AnalysisResult:
    """Pass, Fail, Inconclusive or Error for one measurement.

    `probe` is the newest probe's outcome, or None when the Rollout has no probe.
    """
    samples, error_rate = measured.samples, measured.error_rate

    def result(verdict: Verdict, message: str) -> AnalysisResult:
        # NaN has no JSON spelling: status records it as "no value", the message says NaN.
        return AnalysisResult(
            verdict, _finite(error_rate), _finite(samples), message, measured.queries
        )

    if probe is ProbeOutcome.FAILED:
        return result(Verdict.FAIL, "newest health probe failed")
    if measured.failure is not None:
        return result(Verdict.ERROR, measured.failure)
    threshold = _percent(config.error_threshold)
    if samples is not None and math.isnan(samples):
        return result(
            Verdict.INCONCLUSIVE,
            f"sample-count query returned NaN, counted as 0 of {config.min_sample_size} samples",
        )
    if samples is None or samples < config.min_sample_size:
        have = 0 if samples is None else int(samples)
        return result(
            Verdict.INCONCLUSIVE, f"waiting for samples: {have} of {config.min_sample_size}"
        )
    if error_rate is None:
        return result(Verdict.INCONCLUSIVE, "error-rate query returned no data")
    if math.isnan(error_rate):
        return result(Verdict.INCONCLUSIVE, "error-rate query returned NaN (nothing to divide by?)")
    summary = f"error rate {_percent(error_rate)} over {int(samples)} operations"
    if error_rate > config.error_threshold:
        return result(Verdict.FAIL, f"{summary} > threshold {threshold}")
    if probe is not None and probe is not ProbeOutcome.PASSED:
        return result(
            Verdict.INCONCLUSIVE, f"{summary}; waiting for a health probe result ({probe.value})"
        )
    return result(Verdict.PASS, f"{summary} <= threshold {threshold}")
