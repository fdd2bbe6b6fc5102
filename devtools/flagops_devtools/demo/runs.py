"""What one Rollout did during the demo, for the live output and the summary."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from flagops_devtools.demo.reach import Reach


@dataclass
class RolloutRun:
    """What one Rollout did, for the summary."""

    name: str
    started: float = 0.0
    ended: float | None = None
    final: dict[str, Any] = field(default_factory=dict)
    stage_seen: dict[str, float] = field(default_factory=dict)
    # stage -> when the operator decided it (stageStartedAt, epoch seconds); the latest wins.
    decided: dict[str, float] = field(default_factory=dict)
    reach: list[Reach] = field(default_factory=list)
    events: list[str] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def stage_times(self) -> list[tuple[str, float]]:
        ordered = sorted(self.stage_seen.items(), key=lambda item: item[1])
        ends = [t for _, t in ordered[1:]] + [self.ended or time.monotonic()]
        return [(stage, end - began) for (stage, began), end in zip(ordered, ends, strict=True)]

    def summary_lines(self) -> list[str]:
        final = self.final
        last = final.get("lastAnalysis") or {}
        stages = ", ".join(f"{stage} {secs:.0f}s" for stage, secs in self.stage_times())
        lines = [
            f"  {self.name:<20} stage {final.get('stage')} phase {final.get('phase')} "
            f"after {self.seconds:.0f}s",
            f"  {'':<20} stages: {stages}",
        ]
        if last:
            lines.append(f"  {'':<20} last analysis: {last.get('verdict')} - {last.get('message')}")
        reached = ", ".join(
            f"{r.stage} {r.seconds * 1000:.0f} ms" if r.seconds is not None else f"{r.stage} -"
            for r in self.reach
        )
        lines.append(f"  {'':<20} decision -> app: {reached}")
        return lines

    def result(self) -> dict[str, Any]:
        final = self.final
        return {
            "stage": final.get("stage"),
            "phase": final.get("phase"),
            "seconds": round(self.seconds, 1),
            "message": final.get("message"),
            "reach_ms": {
                r.stage: None if r.seconds is None else round(r.seconds * 1000) for r in self.reach
            },
            "reach_within_promise": all(r.kept for r in self.reach),
        }
