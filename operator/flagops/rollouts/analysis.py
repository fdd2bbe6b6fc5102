"""One analysis in one call: measure (Prometheus I/O), then judge (pure).

The reconciler runs the two steps apart (measuring in a thread); tools and
tests that want a verdict from a Prometheus call `analyse()`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flagops.api.stages import Stage
from flagops.rollouts.judge import AnalysisResult, judge
from flagops.rollouts.measure import QueryClient, measure
from flagops.rollouts.model import ProbeOutcome
from flagops.rollouts.queries import DEFAULT_TIMEOUT_SECONDS, AnalysisConfig


def analyse(
    client: QueryClient,
    config: AnalysisConfig,
    *,
    stage: Stage,
    time_in_stage: timedelta,
    now: datetime,
    probe: ProbeOutcome | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    address: str = "",
) -> AnalysisResult:
    """Measure and judge the stage: Pass, Fail, Inconclusive or Error. Never raises.

    `probe` is the newest probe's outcome, or None when the Rollout has no probe.
    """
    measured = measure(
        client,
        config,
        stage=stage,
        time_in_stage=time_in_stage,
        now=now,
        timeout=timeout,
        address=address,
    )
    return judge(config, measured, probe)
