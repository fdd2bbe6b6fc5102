"""The live terminal view of one Rollout: ANSI redraw on a terminal, one line per change
otherwise (so a CI log reads well)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

from flagops.api.rollout import Rollout
from flagops.api.stages import ORDER, PERCENT

BAR_WIDTH = 20
# Without a terminal, repeat an unchanged line at most this often (a heartbeat in CI logs).
HEARTBEAT_SECONDS = 10.0


@dataclass(frozen=True)
class Snapshot:
    """What the view shows of a Rollout at one moment."""

    name: str
    flag: str
    stage: str
    phase: str
    percent: int
    in_stage: float | None
    stage_duration: str
    error_rate: float | None
    threshold: float
    samples: float | None
    min_samples: int
    verdict: str
    failures: int
    failure_limit: int
    probe: str
    message: str
    seeing: int
    users: int


def snapshot(rollout: dict[str, Any], seeing: int, users: int) -> Snapshot:
    # The typed read boundary: lenient, so a half-written status still draws.
    read = Rollout.from_object(rollout)
    spec, status = read.spec, read.status
    last, probe = status.last_analysis, status.last_probe
    stage = status.stage.value if status.stage else "-"
    started = status.stage_started_at
    in_stage = (dt.datetime.now(dt.UTC) - started).total_seconds() if started else None
    percent = status.current_percent
    if percent is None:
        percent = PERCENT[status.stage] if status.stage else 0
    probe_text = "-"
    if spec.health_probe:
        probe_text = str(probe.result.value if probe else "pending")
        if status.active_probe_job:
            probe_text += " (probe running)"
    return Snapshot(
        name=str(read.metadata.get("name", "")),
        flag=spec.flag_ref.name,
        stage=stage,
        phase=status.phase.value if status.phase else "Pending",
        percent=int(percent),
        in_stage=in_stage,
        stage_duration=str(spec.stage_duration),
        error_rate=last.error_rate if last else None,
        threshold=spec.analysis.error_threshold,
        samples=last.samples if last else None,
        min_samples=spec.analysis.min_sample_size,
        verdict=last.verdict.value if last else "-",
        failures=status.consecutive_failures,
        failure_limit=spec.analysis.failure_limit,
        probe=probe_text,
        message=status.message or "",
        seeing=seeing,
        users=users,
    )


def _bar(fraction: float) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * BAR_WIDTH)
    return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def ladder(stage: str) -> str:
    """DISABLED > INTERNAL > [BETA] > ...: where the Rollout is on the stage ladder."""
    return " > ".join(f"[{s.value}]" if s.value == stage else s.value.lower() for s in ORDER)


def panel(s: Snapshot) -> list[str]:
    bake = "-" if s.in_stage is None else f"{s.in_stage:.0f}s"
    samples = "n/a" if s.samples is None else f"{s.samples:.0f}"
    over = s.error_rate is not None and s.error_rate > s.threshold
    return [
        f"rollout {s.name} (flag {s.flag})  phase {s.phase}",
        f"  stage    {ladder(s.stage)}",
        f"  percent  {s.percent:3d}%  {_bar(s.percent / 100)}  in stage {bake}"
        f" (bake {s.stage_duration})",
        f"  errors   {_rate(s.error_rate)} vs threshold {_rate(s.threshold)}"
        f"{'  OVER THRESHOLD' if over else ''}  samples {samples} (need {s.min_samples})",
        f"  verdict  {s.verdict}  (failures in a row {s.failures}/{s.failure_limit})"
        f"  probe {s.probe}",
        f"  users    {s.seeing}/{s.users} sample users see the feature"
        f" {_bar(s.seeing / max(1, s.users))}",
        f"  message  {s.message}",
    ]


def one_line(s: Snapshot) -> str:
    samples = "n/a" if s.samples is None else f"{s.samples:.0f}"
    return (
        f"[{s.name}] {s.stage} {s.percent}% {s.phase} | errors {_rate(s.error_rate)}"
        f" (threshold {_rate(s.threshold)}) samples {samples}/{s.min_samples}"
        f" verdict {s.verdict} | probe {s.probe} | users {s.seeing}/{s.users} | {s.message}"
    )


class LiveView:
    """Redraws a panel in place on a TTY; prints changed lines otherwise."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.tty = out.isatty()
        self._clock = clock
        self._drawn = 0
        self._last_line = ""
        self._last_printed = 0.0

    def _clear_panel(self) -> None:
        if self.tty and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def note(self, text: str) -> None:
        """A line that stays (an Event, a step of the story), printed above the panel."""
        self._clear_panel()
        self.out.write(text + "\n")
        self.out.flush()

    def update(self, s: Snapshot) -> None:
        if self.tty:
            self._clear_panel()
            lines = panel(s)
            self.out.write("\n".join(lines) + "\n")
            self._drawn = len(lines)
            self.out.flush()
            return
        # Counters move every second; a new line is worth it when the story moves.
        key = repr((s.stage, s.phase, s.verdict, s.probe, s.seeing, s.failures))
        now = self._clock()
        if key != self._last_line or now - self._last_printed >= HEARTBEAT_SECONDS:
            self.out.write(one_line(s) + "\n")
            self.out.flush()
            self._last_line, self._last_printed = key, now

    def close(self) -> None:
        """Leave the last panel on screen and start fresh below it."""
        self._drawn = 0
        self._last_line = ""
