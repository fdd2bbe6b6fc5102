"""How long a Rollout's decisions took to reach the app: the operator's `stageStartedAt`
(when it decided a stage, rollbacks included) against the wall-clock time the app's
`FeatureFlags` took in a document carrying that stage (flagops_devtools.demo.app.Arrivals)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flagops_devtools.testing.wait import wait_for

# A stage change must reach the app within this (issue 13's promise for the relay).
PROMISE_SECONDS = 1.0
# Clocks are one machine's, but stageStartedAt is taken before the write, so an arrival
# is never before it; a little slack keeps a rounding from hiding a match.
SLACK_SECONDS = 0.05


@dataclass(frozen=True)
class Reach:
    """One stage decision and when the app had it (`seconds` None: it never arrived)."""

    flag: str
    stage: str
    decided: float  # epoch seconds
    seconds: float | None

    @property
    def kept(self) -> bool:
        return self.seconds is not None and self.seconds < PROMISE_SECONDS

    def line(self, label: str = "") -> str:
        what = f"{self.flag} {self.stage}{label}"
        if self.seconds is None:
            return f"{what}: not seen by the app"
        mark = "" if self.kept else f"  (over {PROMISE_SECONDS:g} s!)"
        return f"{what}: reached the app {self.seconds * 1000:.0f} ms after the decision{mark}"


def parse_time(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def reach(
    flag: str, decisions: Mapping[str, float], arrivals: Iterable[Mapping[str, Any]]
) -> list[Reach]:
    """For each (stage, decided-at) the first arrival at or after it whose flag has that
    stage; in the order decided."""
    seen = sorted(arrivals, key=lambda a: float(a["at"]))
    found: list[Reach] = []
    for stage, decided in sorted(decisions.items(), key=lambda item: item[1]):
        seconds: float | None = None
        for arrival in seen:
            state = (arrival.get("flags") or {}).get(flag) or {}
            at = float(arrival["at"])
            if state.get("stage") == stage and at >= decided - SLACK_SECONDS:
                seconds = max(0.0, at - decided)
                break
        found.append(Reach(flag, stage, decided, seconds))
    return found


def wait_reach(
    flag: str,
    decisions: Mapping[str, float],
    arrivals: Callable[[], list[dict[str, Any]]],
    timeout: float = 5.0,
) -> list[Reach]:
    """`reach`, once the latest decision has arrived (or `timeout` passed: then it shows
    as not seen)."""
    last = max(decisions.values(), default=0.0)

    def arrived() -> list[Reach] | None:
        found = reach(flag, decisions, arrivals())
        return found if all(r.seconds is not None for r in found if r.decided >= last) else None

    try:
        result: list[Reach] = wait_for(arrived, timeout=timeout, interval=0.2)
    except TimeoutError:
        result = reach(flag, decisions, arrivals())
    return result
