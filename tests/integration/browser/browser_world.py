"""The browser tests' world: the operator, the relay, the demo's meal-plan app serving the
web page, and the headless chromium showing it (imported by name: no packages here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flagops.api.resources import GROUP, VERSION
from flagops_devtools.demo.browser import Browser, MealPlanPage
from flagops_devtools.demo.parts import MealPlanAppProcess
from flagops_devtools.testing.relay import RelayProcess
from flagops_devtools.testing.wait import wait_for

FLAG_KEY = "calendar_sync"
APP_TOKEN = "mealplan-app-token-aaaaaaaaaaaaaaaa"
WEB_TOKEN = "mealplan-web-token-bbbbbbbbbbbbbbbb"
VENV_BIN = Path(sys.executable).parent


@dataclass
class WebWorld:
    namespace: str
    kubeconfig: Path
    custom: Any
    relay: RelayProcess
    app: MealPlanAppProcess
    browser: Browser
    pages: list[MealPlanPage] = field(default_factory=list)
    app_token: str = APP_TOKEN

    @property
    def app_relay_url(self) -> str:
        """The base a server-side SDK follows: the relay, this namespace."""
        return f"{self.relay.url}/namespaces/{self.namespace}"

    def create_flag(self, **spec: Any) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FeatureFlag",
            "metadata": {"name": "calendar-sync"},
            "spec": {"key": FLAG_KEY, "integration": "calendar_sync", **spec},
        }
        self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "featureflags", body
        )

    def open(self, user: str, cohort: str | None = None) -> MealPlanPage:
        page = self.browser.open(self.app.web_url, user, cohort)
        self.pages.append(page)
        return page

    def kubectl_flagops(self, *args: str) -> tuple[float, float]:
        """Run `kubectl flagops ARGS` as a user does (the plugin on PATH); the wall-clock
        times it started and returned."""
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
        argv = ["kubectl", "flagops", *args, "-n", self.namespace]
        started = time.time()
        result = subprocess.run(
            [*argv, "--kubeconfig", str(self.kubeconfig)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        returned = time.time()
        assert result.returncode == 0, f"{' '.join(argv)}: {result.stdout}{result.stderr}"
        return started, returned


WorldFactory = Callable[..., WebWorld]


def wait_published(world: WebWorld, check: Callable[[dict[str, Any]], bool]) -> None:
    """Wait until the app (through the relay) has a calendar_sync that passes `check`."""

    def arrived() -> bool:
        for arrival in reversed(world.app.arrivals()):
            state = arrival["flags"].get(FLAG_KEY)
            return state is not None and check(state)
        return False

    wait_for(arrived, timeout=30, message="calendar_sync did not reach the app")
