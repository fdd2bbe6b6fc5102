"""The demo's own processes: the local Calendar servers and the meal-plan app, plus the
probe runner the kubelet stand-in uses. Children die with the demo (PDEATHSIG)."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

from flagops.testing.binaries import repo_root
from flagops.testing.process import ManagedProcess, free_port, tail
from flagops.testing.wait import wait_for


class CalendarServerProcess:
    """`python -m tests.calendar_server`: Calendar v3 + OAuth on loopback, one account."""

    def __init__(self, name: str, work_dir: Path) -> None:
        self.name = name
        self.credentials_file = work_dir / f"{name}-service-account.json"
        self.process = ManagedProcess(
            name,
            [
                sys.executable,
                "-m",
                "tests.calendar_server",
                "--service-account-out",
                str(self.credentials_file),
            ],
            work_dir / f"{name}.log",
            cwd=repo_root(),
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


class MealPlanAppProcess:
    """The sample app (flagops.demo.app) as a child process."""

    def __init__(
        self,
        work_dir: Path,
        flags_dir: Path,
        calendar: CalendarServerProcess | None,
        shopping: CalendarServerProcess | None,
    ) -> None:
        self.metrics_port = free_port()
        argv = [
            sys.executable,
            "-m",
            "flagops.demo.app",
            "--flags-dir",
            str(flags_dir),
            "--metrics-port",
            str(self.metrics_port),
        ]
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
        self.process = ManagedProcess("meal-plan-app", argv, work_dir / "meal-plan-app.log")

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.metrics_port}"

    def start(self, timeout: float = 30) -> MealPlanAppProcess:
        self.process.start()

        def serving() -> bool:
            if not self.process.running():
                raise RuntimeError(self.process.describe_failure())
            url = f"http://{self.target}/metrics"
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)

        wait_for(serving, timeout=timeout, message="meal-plan app did not serve metrics")
        return self

    def stop(self) -> None:
        self.process.stop()
