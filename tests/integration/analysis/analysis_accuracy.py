"""Every stage total the operator writes, next to the Rollout's own exact query.

Polls record each new (stage, since, through) a Rollout's status shows, with the verdict
written beside it. Comparing happens later, so a poll during a Prometheus outage records
and the exact figures are asked for once Prometheus is back (its TSDB keeps them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from analysis_world import MIN_SAMPLES, THRESHOLD, AnalysisWorld, verdict

from flagops_devtools.testing.stage_totals import Counts, StageTotals, exact_for

# The promise (DESIGN.md "Scale, and past one process"): within half a percentage point.
LIMIT_PP = 0.5
# Verdicts must agree when the exact figure is this far from the threshold.
THRESHOLD_MARGIN = 0.01
# ... and this far (as a share) from minSampleSize.
SAMPLES_MARGIN = 0.15
# increase() needs two scrapes (1 s apart) inside its window, and extrapolates to the window's
# ends: over a shorter stretch the exact query has no figure worth comparing.
MIN_EXACT_WINDOW_SECONDS = 4


@dataclass(frozen=True)
class Snapshot:
    rollout: str
    integration: str
    totals: StageTotals
    verdict: str | None
    last_analysis: dict[str, Any]


@dataclass(frozen=True)
class Comparison:
    snapshot: Snapshot
    exact: Counts

    @property
    def difference_pp(self) -> float | None:
        """|accumulated - exact| error rate in percentage points (None: no operations)."""
        mine, theirs = self.snapshot.totals.counts.error_rate, self.exact.error_rate
        if mine is None or theirs is None:
            return None
        return abs(mine - theirs) * 100

    def describe(self) -> str:
        t = self.snapshot.totals
        return (
            f"{self.snapshot.rollout} {t.stage} since {t.since:%H:%M:%S} through"
            f" {t.through:%H:%M:%S} ({t.window_seconds}s): accumulated {_rate(t.counts)}"
            f" of {t.counts.operations:.1f}, exact {_rate(self.exact)} of"
            f" {self.exact.operations:.1f}, verdict {self.snapshot.verdict}"
        )


def expected_verdict(exact: Counts) -> str | None:
    """What the exact figure gives, or None when it is too close to a boundary to say."""
    if exact.operations < MIN_SAMPLES * (1 - SAMPLES_MARGIN):
        return "Inconclusive"
    if exact.operations < MIN_SAMPLES * (1 + SAMPLES_MARGIN):
        return None
    rate = exact.error_rate
    assert rate is not None
    if abs(rate - THRESHOLD) < THRESHOLD_MARGIN:
        return None
    return "Fail" if rate > THRESHOLD else "Pass"


@dataclass
class AccuracyLog:
    world: AnalysisWorld
    snapshots: list[Snapshot] = field(default_factory=list)
    comparisons: list[Comparison] = field(default_factory=list)
    _seen: set[tuple[str, str, datetime, datetime]] = field(default_factory=set)
    _compared: int = 0

    def observe(self, statuses: dict[str, dict[str, Any]]) -> None:
        for name, status in statuses.items():
            watched = self.world.rollouts.get(name)
            totals = StageTotals.from_status(status)
            if watched is None or totals is None:
                continue
            key = (name, totals.stage, totals.since, totals.through)
            if key in self._seen:
                continue
            self._seen.add(key)
            self.snapshots.append(
                Snapshot(
                    rollout=name,
                    integration=watched.integration,
                    totals=totals,
                    verdict=verdict(status),
                    last_analysis=dict(status.get("lastAnalysis") or {}),
                )
            )

    def compare(self) -> list[Comparison]:
        """Ask Prometheus for the exact figures of every snapshot not compared yet whose
        stretch the exact query can measure."""
        for snapshot in self.snapshots[self._compared :]:
            if snapshot.totals.window_seconds >= MIN_EXACT_WINDOW_SECONDS:
                exact = exact_for(self.world.prometheus, snapshot.integration, snapshot.totals)
                self.comparisons.append(Comparison(snapshot, exact))
        self._compared = len(self.snapshots)
        return self.comparisons

    def comparable(self, names: set[str] | None = None) -> list[Comparison]:
        return [c for c in self.compare() if names is None or c.snapshot.rollout in names]

    def judged(self, names: set[str] | None = None) -> list[Comparison]:
        """Comparisons with enough operations for the rate to decide a verdict."""
        return [
            c
            for c in self.comparable(names)
            if c.exact.operations >= MIN_SAMPLES and c.difference_pp is not None
        ]

    def max_difference_pp(self, names: set[str] | None = None) -> float:
        return max((c.difference_pp or 0.0 for c in self.judged(names)), default=0.0)

    def assert_accurate(self, names: set[str] | None = None, *, at_least: int = 1) -> float:
        """Every judged comparison within LIMIT_PP, and its verdict what the exact figure
        gives; the largest difference in percentage points (printed for the report)."""
        judged = self.judged(names)
        assert len(judged) >= at_least, (
            f"only {len(judged)} comparison(s) with >= {MIN_SAMPLES} operations"
            f" (snapshots: {len(self.snapshots)})"
        )
        off = [c for c in judged if (c.difference_pp or 0.0) > LIMIT_PP]
        assert not off, "accumulated error rate off by more than 0.5 pp:\n" + "\n".join(
            c.describe() for c in off
        )
        self.assert_verdicts_agree(names)
        self.assert_status_consistent(names)
        self.assert_only_growing(names)
        worst = self.max_difference_pp(names)
        print(
            f"\naccuracy of {', '.join(sorted(names or self.world.rollouts))}: {len(judged)}"
            f" comparisons, max |accumulated - exact| {worst:.4f} pp"
        )
        return worst

    def assert_verdicts_agree(self, names: set[str] | None = None) -> None:
        wrong = []
        for c in self.comparable(names):
            if c.snapshot.verdict in (None, "Error"):
                continue
            expected = expected_verdict(c.exact)
            if expected is not None and c.snapshot.verdict != expected:
                wrong.append(f"{c.describe()}; the exact figure gives {expected}")
        assert not wrong, "verdicts differ from the exact query's:\n" + "\n".join(wrong)

    def assert_only_growing(self, names: set[str] | None = None) -> None:
        """Within one stage, totals only move forward: a later tick never has fewer
        operations (a counter reset or a restart read as a fall would)."""
        last: dict[tuple[str, str, datetime], StageTotals] = {}
        wrong = []
        for s in self.snapshots:
            if names is not None and s.rollout not in names:
                continue
            key = (s.rollout, s.totals.stage, s.totals.since)
            before = last.get(key)
            if before is not None and (
                s.totals.through < before.through
                or s.totals.counts.operations < before.counts.operations
            ):
                wrong.append(f"{s.rollout}: {before} then {s.totals}")
            last[key] = s.totals
        assert not wrong, "stage totals went backwards:\n" + "\n".join(wrong)

    def stage_runs(self, name: str) -> list[str]:
        """The stages of the Rollout's snapshots in order, a run of one stage told once.

        (Within a run `since` may move once, from the stage's decision to its publication,
        when a tick was counted before the publication was noted.)"""
        runs: list[str] = []
        for s in self.snapshots:
            if s.rollout == name and (not runs or runs[-1] != s.totals.stage):
                runs.append(s.totals.stage)
        return runs

    def assert_status_consistent(self, names: set[str] | None = None) -> None:
        """lastAnalysis judges the totals written with it: samples = operations, errorRate =
        errors/operations (an Error verdict leaves the totals where they were)."""
        wrong = []
        for s in self.snapshots:
            if (names is not None and s.rollout not in names) or s.verdict in (None, "Error"):
                continue
            samples, rate = s.last_analysis.get("samples"), s.last_analysis.get("errorRate")
            counts = s.totals.counts
            if samples is not None and abs(float(samples) - counts.operations) > 1:
                wrong.append(f"{s.rollout}: samples {samples} vs operations {counts.operations}")
            mine = counts.error_rate
            if rate is not None and mine is not None and abs(float(rate) - mine) > 1e-4:
                wrong.append(f"{s.rollout}: errorRate {rate} vs totals {counts.error_rate}")
        assert not wrong, "lastAnalysis disagrees with stageTotals:\n" + "\n".join(wrong)


def _rate(counts: Counts) -> str:
    rate = counts.error_rate
    return "n/a" if rate is None else f"{rate * 100:.3f}%"
