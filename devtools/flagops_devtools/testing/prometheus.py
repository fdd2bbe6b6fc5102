"""Run Debian's real `prometheus` server on loopback for tests and the demo."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from flagops_devtools.testing.process import ManagedProcess, Service, free_port
from flagops_devtools.testing.wait import wait_for

DEFAULT_JOB = "flagops-test"


class PrometheusError(RuntimeError):
    pass


def _find_prometheus() -> str:
    found = shutil.which("prometheus")
    if not found:
        raise PrometheusError(
            "the prometheus binary is not installed; run hack/setup-system.sh "
            "(apt-get install --no-install-recommends prometheus)"
        )
    return found


class PrometheusServer(Service):
    """One Prometheus scraping `targets` ("host:port") as job `job`.

    stop() and start() again reuse the port and the TSDB folder, which is how
    tests simulate an outage and a recovery.
    """

    def __init__(
        self,
        targets: list[str],
        scrape_interval: str = "1s",
        port: int | None = None,
        *,
        job: str = DEFAULT_JOB,
        ready_timeout: float = 60,
        stop_timeout: float = 10,
    ) -> None:
        self.targets = list(targets)
        self.scrape_interval = scrape_interval
        self.job = job
        self.port = port or free_port()
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.dir = Path(tempfile.mkdtemp(prefix="flagops-prometheus-"))
        self._config_path = self.dir / "prometheus.yml"
        self.started_at = 0.0
        self._process = ManagedProcess(
            "prometheus",
            [
                _find_prometheus(),
                f"--config.file={self._config_path}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=2h",
                "--log.level=warn",
            ],
            self.dir / "prometheus.log",
            cwd=self.dir,
        )
        self._write_config()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self._process.log_path

    def _write_config(self) -> None:
        # JSON is YAML, so no YAML writer is needed.
        config = {
            "global": {
                "scrape_interval": self.scrape_interval,
                # Prometheus refuses a timeout longer than the interval.
                "scrape_timeout": self.scrape_interval,
                "evaluation_interval": self.scrape_interval,
            },
            "scrape_configs": [
                {"job_name": self.job, "static_configs": [{"targets": self.targets}]}
            ],
        }
        self._config_path.write_text(json.dumps(config, indent=2) + "\n")

    def running(self) -> bool:
        return self._process.running()

    def start(self) -> float:
        """Start (or restart) on the same port; return seconds until /-/ready."""
        if self._process.running():
            raise PrometheusError("prometheus already running")
        began = time.monotonic()
        self.started_at = time.time()
        self._process.start()

        def ready() -> str | None:
            if not self._process.running():
                return "exited"
            return "ready" if self._get("/-/ready")[0] == 200 else None

        try:
            state = wait_for(
                ready, timeout=self.ready_timeout, interval=0.1, message="prometheus not ready"
            )
        except TimeoutError as exc:
            failure = self._process.describe_failure()
            self._process.stop(self.stop_timeout)
            raise PrometheusError(f"{exc}\n{failure}") from None
        if state == "exited":
            raise PrometheusError(f"prometheus exited on start\n{self._process.describe_failure()}")
        return time.monotonic() - began

    def stop(self) -> None:
        self._process.stop(self.stop_timeout)

    def close(self) -> None:
        """Stop and remove the TSDB folder."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def set_targets(self, targets: list[str]) -> None:
        """Replace the scrape targets, reloading a running server."""
        self.targets = list(targets)
        self._write_config()
        if self._process.running():
            request = urllib.request.Request(f"{self.url}/-/reload", method="POST")  # noqa: S310
            with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
                if response.status != 200:
                    raise PrometheusError(f"reload failed: HTTP {response.status}")

    def _get(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(f"{self.url}{path}", timeout=5) as response:  # noqa: S310
            return int(response.status), response.read()

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Instant query (at Unix time `at`, default now); the `result` list of the answer."""
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        _, body = self._get("/api/v1/query?" + urllib.parse.urlencode(params))
        answer = json.loads(body)
        if answer.get("status") != "success":
            raise PrometheusError(f"query {promql!r} failed: {answer.get('error')}")
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def wait_for_scrape(self, job_or_target: str | None = None, timeout: float = 30) -> None:
        """Wait for a successful scrape (`up == 1`) by the current run of the server.

        Give a job name, or a target as "host:port". Samples from before a
        restart stay in the TSDB, so only samples newer than the start count.
        Prometheus 2.42 hands new targets to its scrapers on a 5-second tick,
        so the first scrape after a (re)start takes up to about 5 s.
        """
        selector = job_or_target or self.job
        label = "instance" if ":" in selector else "job"
        series = f'up{{{label}="{selector}"}}'
        promql = f"{series} == 1 and timestamp({series}) > {self.started_at:.3f}"
        wait_for(
            lambda: self.query(promql),
            timeout=timeout,
            interval=0.2,
            message=f"prometheus at {self.url} has not scraped {selector} successfully",
        )
