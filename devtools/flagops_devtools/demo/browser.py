"""Headless Debian chromium on the meal-plan page, through Playwright (sync API).

Playwright drives the system browser (`/usr/bin/chromium`, or FLAGOPS_CHROMIUM); it
never downloads one (`playwright install` is never run). The page marks each path's
<section> with data-enabled / data-revision / data-changed-at; this reads them.
"""

from __future__ import annotations

import os
import shutil
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

PATHS = ("openfeature", "flagops")
LABELS = {"openfeature": "OpenFeature web SDK + OFREP", "flagops": "@flagops/sdk stream"}


class BrowserUnavailable(RuntimeError):
    pass


def chromium_path() -> Path:
    """The system chromium; BrowserUnavailable saying how to install it."""
    configured = os.environ.get("FLAGOPS_CHROMIUM")
    found = configured or shutil.which("chromium") or "/usr/bin/chromium"
    path = Path(found)
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise BrowserUnavailable(
            f"no chromium at {path}: install Debian's chromium (hack/setup-system.sh, "
            "run by `make setup`, does) or point FLAGOPS_CHROMIUM at one"
        )
    return path


@dataclass(frozen=True)
class PathState:
    """What one path of the page shows."""

    enabled: bool | None
    changed_at: float | None  # epoch seconds, when the value shown last changed
    revision: str | None


class Browser:
    """One headless chromium; `open` gives a page per user."""

    def __init__(self) -> None:
        executable = chromium_path()
        try:
            from playwright.sync_api import sync_playwright
        except ImportError as exc:  # pragma: no cover - the dev extra installs it
            raise BrowserUnavailable(
                "the Python package playwright is missing: `make setup` installs it"
            ) from exc
        self._playwright = sync_playwright().start()
        try:
            self._browser = self._playwright.chromium.launch(
                executable_path=str(executable), headless=True
            )
        except Exception:
            self._playwright.stop()
            raise
        self.version = self._browser.version

    def open(self, url: str, user: str, cohort: str | None = None) -> MealPlanPage:
        query = {"user": user, **({"cohort": cohort} if cohort else {})}
        page = self._browser.new_context().new_page()
        messages: list[str] = []
        page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
        page.goto(url + "?" + urllib.parse.urlencode(query))
        return MealPlanPage(page, messages)

    def close(self) -> None:
        try:
            self._browser.close()
        finally:
            self._playwright.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class MealPlanPage:
    def __init__(self, page: Any, console: list[str]) -> None:
        self.page = page
        self.console = console

    def state(self, path: str) -> PathState:
        data: dict[str, str] = self.page.eval_on_selector(
            f"#{path}", "element => ({...element.dataset})"
        )
        enabled = {"true": True, "false": False}.get(data.get("enabled", ""))
        changed = data.get("changedAt") or ""
        return PathState(
            enabled=enabled,
            changed_at=int(changed) / 1000 if changed else None,
            revision=data.get("revision") or None,
        )

    def bucket(self) -> int:
        return int(self.page.eval_on_selector("body", "body => body.dataset.bucket"))

    def problem(self) -> str:
        text: str = self.page.eval_on_selector("#problem", "element => element.textContent")
        return text

    def wait_shown(
        self, enabled: bool, timeout: float = 10.0, paths: tuple[str, ...] = PATHS
    ) -> None:
        """Wait until every path shows `enabled`; TimeoutError naming what each shows."""
        want = "true" if enabled else "false"
        selector = ", ".join(f"#{p}" for p in paths)
        script = (
            "([selector, want]) => [...document.querySelectorAll(selector)]"
            ".every(element => element.dataset.enabled === want)"
        )
        try:
            self.page.wait_for_function(script, arg=[selector, want], timeout=timeout * 1000)
        except Exception as exc:
            shown = {p: self.state(p) for p in paths}
            raise TimeoutError(
                f"page did not show calendar_sync={want} on {paths} within {timeout:g}s: "
                f"{shown}; problem: {self.problem()!r}; console: {self.console[-10:]}"
            ) from exc

    def close(self) -> None:
        self.page.context.close()
