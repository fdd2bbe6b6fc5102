"""What the demo applies: its namespace, the two Rollouts and their timings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NAMESPACE = "health-portal"
PROBE_SECRET = "calendar-probe-credentials"  # noqa: S105 - the name of a Secret
CALENDAR_ROLLOUT = "calendar-sync"
SHOPPING_ROLLOUT = "shopping-list-sync"
SHOPPING_FLAG_KEY = "shopping_list_sync"
# The shopping list flag names no integration, so its Rollout says what to measure: the
# operations of the app's service gated by this flag. `or vector(0)`: no error series
# exists until the first error, and a ratio without it would have no data at all.
SHOPPING_ERROR_RATE_QUERY = (
    '(sum(increase(flagops_integration_operations_total{flag="{{flag}}",outcome="error"}'
    "[{{window}}])) or vector(0))"
    ' / sum(increase(flagops_integration_operations_total{flag="{{flag}}"}[{{window}}]))'
)
SHOPPING_SAMPLE_COUNT_QUERY = (
    'sum(increase(flagops_integration_operations_total{flag="{{flag}}"}[{{window}}]))'
)


@dataclass(frozen=True)
class Timings:
    stage_duration: str
    interval: str
    probe_every: str
    probe_timeout: str
    calendar_deadline: float
    shopping_deadline: float
    # Scripted 503s queued on the shopping-list backend when the spike starts.
    spike_faults: int


NORMAL = Timings("20s", "2s", "30s", "20s", 240, 150, 400)
FAST = Timings("4s", "1s", "20s", "15s", 180, 120, 400)


def _rollout(name: str, flag: str, timings: Timings, analysis: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flagops.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "health-portal"}},
        "spec": {
            "flagRef": {"name": flag},
            "targetStage": "FULL",
            "autoAdvance": True,
            "stageDuration": timings.stage_duration,
            "internalCohorts": ["internal"],
            "analysis": {"interval": timings.interval, "errorThreshold": 0.05, **analysis},
        },
    }


def calendar_rollout(timings: Timings, probe: bool = True) -> dict[str, Any]:
    body = _rollout(
        CALENDAR_ROLLOUT,
        "calendar-sync",
        timings,
        {"minSampleSize": 30, "failureLimit": 2, "pauseOnError": True, "rollbackOnError": False},
    )
    if probe:
        body["spec"]["healthProbe"] = {
            "integration": "calendar_sync",
            "secretRef": {"name": PROBE_SECRET},
            "timeout": timings.probe_timeout,
            "every": timings.probe_every,
        }
    return body


def shopping_rollout(timings: Timings) -> dict[str, Any]:
    return _rollout(
        SHOPPING_ROLLOUT,
        "shopping-list-sync",
        timings,
        {
            "minSampleSize": 10,
            "failureLimit": 2,
            "pauseOnError": True,
            "rollbackOnError": True,
            "prometheus": {
                "errorRateQuery": SHOPPING_ERROR_RATE_QUERY,
                "sampleCountQuery": SHOPPING_SAMPLE_COUNT_QUERY,
            },
        },
    )
