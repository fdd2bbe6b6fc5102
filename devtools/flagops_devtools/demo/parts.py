"""The demo's own processes: the local Calendar servers and the meal-plan app, plus the
probe runner the kubelet stand-in uses. Children die with the demo (PDEATHSIG)."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flagops_devtools.testing.process import ManagedProcess, free_port, tail
from flagops_devtools.testing.wait import wait_for


class CalendarServerProcess:
    """`python -m flagops_devtools.calendar_server`: Calendar v3 + OAuth on loopback, one
    account."""

    def __init__(self, name: str, work_dir: Path) -> None:
        self.name = name
        self.credentials_file = work_dir / f"{name}-service-account.json"
        self.process = ManagedProcess(
            name,
            [
                sys.executable,
                "-m",
                "flagops_devtools.calendar_server",
                "--service-account-out",
                str(self.credentials_file),
            ],
            work_dir / f"{name}.log",
        )
        self.info: dict[str, Any] = {}

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def api_endpoint(self) -> str:
        return str(self.info["api_endpoint"])

    def start(self, timeout: float = 30) -> CalendarServerProcess:
        self.process.start()

        def announced() -> dict[str, Any] | None:
            if not self.process.running():
                raise RuntimeError(self.process.describe_failure())
            for line in tail(self.process.log_path, 50).splitlines():
                if line.startswith("{"):
                    found: dict[str, Any] = json.loads(line)
                    return found
            return None

        self.info = wait_for(announced, timeout=timeout, message=f"{self.name} did not start")
        return self

    def inject_errors(self, route: str, count: int, status: int = 503) -> None:
        """Queue `count` scripted error replies on `route` (through the admin endpoint)."""
        fault = {"status": status, "reason": "backendError", "message": "injected by the demo"}
        body = json.dumps({"route": route, "faults": [fault] * count}).encode()
        request = urllib.request.Request(  # noqa: S310 - our own loopback server
            f"{self.url}/_admin/faults",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            if response.status >= 300:
                raise RuntimeError(f"{self.name}: fault injection failed: HTTP {response.status}")

    def stop(self) -> None:
        self.process.stop()


@dataclass(frozen=True)
class AppRelay:
    """How the app reads flags from the relay, and what its web page is told.

    `url` is the base the app's `FeatureFlags.from_relay` follows (with a namespace
    prefix); `root` the relay's address for the page; tokens go by environment."""

    url: str
    root: str
    namespace: str
    token: str | None = None
    web_token: str | None = None


class MealPlanAppProcess:
    """The sample app (flagops_devtools.demo.app) as a child process; with `relay`, it follows the
    relay's stream and serves the meal-plan web page on `web_port`."""

    def __init__(
        self,
        work_dir: Path,
        flags_dir: Path | None,
        calendar: CalendarServerProcess | None,
        shopping: CalendarServerProcess | None,
        relay: AppRelay | None = None,
        web_port: int | None = None,
        web_dir: Path | None = None,
    ) -> None:
        self.metrics_port = free_port()
        self.relay = relay
        self.web_port = web_port if relay is not None else None
        argv = [
            sys.executable,
            "-m",
            "flagops_devtools.demo.app",
            "--metrics-port",
            str(self.metrics_port),
        ]
        if flags_dir is not None:
            argv += ["--flags-dir", str(flags_dir)]
        env = dict(os.environ)
        if relay is not None:
            argv += ["--relay-url", relay.url]
            if relay.token:
                env["FLAGOPS_RELAY_TOKEN"] = relay.token
            if self.web_port is not None:
                argv += ["--web-port", str(self.web_port), "--web-relay-url", relay.root]
                argv += ["--namespace", relay.namespace]
                if web_dir is not None:
                    argv += ["--web-dir", str(web_dir)]
                if relay.web_token:
                    env["FLAGOPS_WEB_RELAY_TOKEN"] = relay.web_token
        if calendar is None or shopping is None:
            argv.append("--mock")
        else:
            argv += [
                "--calendar-endpoint",
                calendar.url,
                "--calendar-credentials",
                str(calendar.credentials_file),
                "--shopping-endpoint",
                shopping.url,
                "--shopping-credentials",
                str(shopping.credentials_file),
            ]
        self.process = ManagedProcess(
            "meal-plan-app", argv, work_dir / "meal-plan-app.log", env=env
        )

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    @property
    def web_url(self) -> str:
        """The meal-plan page's address (with `relay` and `web_port`)."""
        if self.web_port is None:
            raise RuntimeError("the app serves no web page (no relay or web port)")
        return f"http://127.0.0.1:{self.web_port}/"

    def arrivals(self) -> list[dict[str, Any]]:
        """When each revision reached the app's FeatureFlags (demo.app.Arrivals)."""
        with urllib.request.urlopen(self.web_url + "api/arrivals", timeout=5) as response:  # noqa: S310
            found: list[dict[str, Any]] = json.loads(response.read())
            return found

    def start(self, timeout: float = 30) -> MealPlanAppProcess:
        self.process.start()

        def serving() -> bool:
            if not self.process.running():
                raise RuntimeError(self.process.describe_failure())
            for url in self._health_urls():
                with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310
                    if response.status != 200:
                        return False
            return True

        wait_for(serving, timeout=timeout, message="meal-plan app did not start serving")
        return self

    def _health_urls(self) -> list[str]:
        urls = [f"http://{self.target}/metrics"]
        if self.web_port is not None:
            urls.append(self.web_url + "config.json")
        return urls

    def stop(self) -> None:
        self.process.stop()
