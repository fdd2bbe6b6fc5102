"""Status writes at scale's price: figures wait for the heartbeat, what users see does not.

The operator runs with its production heartbeat (30 s here, longer than the test), so
any status write seen while the Rollout steadily passes would be one too many; an
error spike must still reach a `kubectl get rollouts -w` within one interval.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import watch
from prometheus_client.parser import text_string_to_metric_families
from rollout_controller_env import EnvFactory, RolloutEnv, parse_time

from flagops.api.resources import GROUP, VERSION
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

INTERVAL = 1.0


def metric_sum(operator: OperatorProcess, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


@contextmanager
def watching(env: RolloutEnv, name: str) -> Iterator[list[tuple[datetime, dict[str, Any]]]]:
    """Every version of the Rollout's status as a watch (kubectl get -w) receives it."""
    seen: list[tuple[datetime, dict[str, Any]]] = []
    stream: Any = watch.Watch()  # type: ignore[no-untyped-call]

    done = threading.Event()

    def follow() -> None:
        try:
            for event in stream.stream(
                env.custom.list_namespaced_custom_object,
                GROUP,
                VERSION,
                env.namespace,
                "rollouts",
                field_selector=f"metadata.name={name}",
                timeout_seconds=120,
            ):
                seen.append((datetime.now(UTC), event["object"].get("status") or {}))
        except Exception:
            # The connection ends with the test's control plane; only a live watch failing
            # is news (and then the test's wait for what it should have seen fails).
            if not done.is_set():
                raise

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        stream.stop()


def test_steady_passing_writes_nothing_until_a_verdict_changes(make_env: EnvFactory) -> None:
    env = make_env(extra_env={"FLAGOPS_STATUS_HEARTBEAT": "30"})
    env.create_flag(enabled=True, rolloutPercent=10)
    env.create_rollout(stageDuration="1h")
    env.wait_status(
        lambda s: (
            s.get("stage") == "BETA"
            and s.get("stagePublishedAt")
            and (s.get("lastAnalysis") or {}).get("verdict") == "Pass"
        ),
        timeout=60,
    )
    operator = env.operator
    writes = metric_sum(operator, "flagops_rollout_status_writes_total")
    passed = metric_sum(operator, "flagops_analysis_total", verdict="Pass")
    wait_for(
        lambda: metric_sum(operator, "flagops_analysis_total", verdict="Pass") >= passed + 5,
        timeout=30,
        message="five more passing analyses",
    )
    # Five analyses that only refreshed the figures: no status write, the figures in metrics.
    assert metric_sum(operator, "flagops_rollout_status_writes_total") == writes
    assert metric_sum(operator, "flagops_analysis_queries_total", kind="grouped") >= 5

    with watching(env, "calendar-sync") as seen:
        wait_for(lambda: seen, timeout=10, message="the watch's first version")
        env.traffic.set(error_share=0.5)

        def failed() -> tuple[datetime, dict[str, Any]] | None:
            return next(
                (
                    (at, s)
                    for at, s in seen
                    if (s.get("lastAnalysis") or {}).get("verdict") == "Fail"
                ),
                None,
            )

        arrived, status = wait_for(failed, timeout=30, message="a Fail verdict in the watch")
    decided = parse_time(status["lastAnalysis"]["time"])
    delay = (arrived - decided).total_seconds()
    print(f"\nFail verdict reached the watch {delay * 1000:.0f} ms after the analysis")
    assert delay < INTERVAL
    assert status["phase"] == "Paused"
    # The checkpoint written with it is the figure judged.
    totals = status["stageTotals"]
    assert totals["stage"] == "BETA"
    assert totals["errors"] / totals["operations"] == pytest.approx(
        status["lastAnalysis"]["errorRate"]
    )
    # The counter moves once the write's response is back, which may be after the watch
    # has delivered the write.
    wait_for(
        lambda: (
            metric_sum(operator, "flagops_rollout_status_writes_total", reason="change") > writes
        ),
        timeout=10,
        message="the write counted as a change",
    )
