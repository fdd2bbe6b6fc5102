"""The demo's browser step: headless chromium on the meal-plan page while the operator
changes calendar_sync, and how long the change took to show on each of the page's paths."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flagops_devtools.demo.browser import LABELS, PATHS, Browser


@dataclass(frozen=True)
class PageTiming:
    user: str
    cohort: str | None
    stage: str
    browser_version: str
    seconds: dict[str, float]  # path -> decision to page

    def lines(self) -> list[str]:
        who = f"{self.user} ({self.cohort or '-'})"
        out = [f"    headless chromium {self.browser_version}, page for {who}:"]
        for path in PATHS:
            out.append(
                f"      {LABELS[path]:<28} calendar_sync {self.stage} shown"
                f" {self.seconds[path] * 1000:.0f} ms after the operator decided"
            )
        return out


def time_page_change(
    url: str,
    user: str,
    cohort: str | None,
    act: Callable[[], None],
    decided: Callable[[], tuple[str, float] | None],
    timeout: float,
) -> PageTiming:
    """Open the page for `user` (showing calendar_sync off), call `act` (which makes the
    operator turn it on for them), wait until both paths show it on, and time each path
    from `decided()`: the (stage, epoch seconds) the operator decided."""
    with Browser() as browser:
        page = browser.open(url, user, cohort)
        try:
            page.wait_shown(False, timeout=30)
            act()
            page.wait_shown(True, timeout=timeout)
            decision = decided()
            if decision is None:
                raise RuntimeError("the page changed but the Rollout shows no stage decision")
            stage, at = decision
            seconds = {}
            for path in PATHS:
                changed = page.state(path).changed_at
                if changed is None:
                    raise RuntimeError(f"the page's {path} path recorded no change time")
                seconds[path] = max(0.0, changed - at)
            return PageTiming(user, cohort, stage, browser.version, seconds)
        finally:
            page.close()
