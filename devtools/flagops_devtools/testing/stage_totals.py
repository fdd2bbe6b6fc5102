"""A Rollout's accumulated stage totals (status.stageTotals) next to the exact figures a real
Prometheus gives for the same stretch of time: what grouped analysis must agree with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flagops_devtools.testing.prometheus import PrometheusServer

OPERATIONS_METRIC = "flagops_integration_operations_total"


@dataclass(frozen=True)
class Counts:
    """Operations (every outcome) and the errors among them."""

    operations: float
    errors: float

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.operations if self.operations > 0 else None


@dataclass(frozen=True)
class StageTotals:
    """status.stageTotals: the stage's counts from `since` (exposure began) up to `through`."""

    stage: str
    since: datetime
    through: datetime
    counts: Counts

    @classmethod
    def from_status(cls, status: dict[str, Any]) -> StageTotals | None:
        raw = status.get("stageTotals")
        if not raw:
            return None
        return cls(
            stage=str(raw["stage"]),
            since=parse_time(str(raw["since"])),
            through=parse_time(str(raw["through"])),
            counts=Counts(operations=float(raw["operations"]), errors=float(raw["errors"])),
        )

    @property
    def window_seconds(self) -> int:
        """through - since in whole seconds (a PromQL range)."""
        return int((self.through - self.since).total_seconds())


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def exact_counts(
    prometheus: PrometheusServer, integration: str, window_seconds: int, at: datetime
) -> Counts:
    """The integration's operations and errors over `[window_seconds]` ending at `at`: each
    Rollout's own exact query over its time in stage. A series that does not exist is 0."""
    if window_seconds < 1:
        raise ValueError(f"a window of {window_seconds}s is no PromQL range")
    selector = f'integration="{integration}"'
    operations = f"sum(increase({OPERATIONS_METRIC}{{{selector}}}[{window_seconds}s]))"
    errors = f'sum(increase({OPERATIONS_METRIC}{{{selector},outcome="error"}}[{window_seconds}s]))'
    instant = at.timestamp()
    return Counts(
        operations=_scalar(prometheus.query(operations, at=instant)),
        errors=_scalar(prometheus.query(errors, at=instant)),
    )


def exact_for(prometheus: PrometheusServer, integration: str, totals: StageTotals) -> Counts:
    """The exact figures for the stretch `totals` covers."""
    return exact_counts(prometheus, integration, totals.window_seconds, totals.through)


def _scalar(result: list[dict[str, Any]]) -> float:
    # sum() of no series is an empty vector: no traffic counted, not an error.
    if not result:
        return 0.0
    if len(result) != 1:
        raise ValueError(f"expected one series from sum(), got {len(result)}")
    return float(result[0]["value"][1])
