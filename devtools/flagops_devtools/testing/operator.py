"""Runs `flagops run` as a real child process against a control plane (tests, demo, benchmarks)."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from flagops_devtools.testing.process import ManagedProcess, Service, free_port
from flagops_devtools.testing.wait import wait_for


class OperatorProcess(Service):
    def __init__(
        self,
        kubeconfig: Path,
        namespaces: Sequence[str] = (),
        *,
        prometheus_address: str = "http://127.0.0.1:9",
        standalone: bool = True,
        peering: str = "flagops",
        extra_args: Sequence[str] = (),
        extra_env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        name: str = "flagops-operator",
    ) -> None:
        self.metrics_port = free_port()
        self.health_port = free_port()
        self._log_dir = log_dir or Path(tempfile.mkdtemp(prefix="flagops-operator-"))
        argv = [
            sys.executable,
            "-m",
            "flagops.cli.main",
            "run",
            "--prometheus-address",
            prometheus_address,
            "--metrics-port",
            str(self.metrics_port),
            "--health-port",
            str(self.health_port),
            "--log-format",
            "text",
            "--peering",
            peering,
        ]
        if standalone:
            argv.append("--standalone")
        for namespace in namespaces:
            argv += ["--namespace", namespace]
        argv += list(extra_args)
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), **(extra_env or {})}
        # Tests bind to loopback only.
        env.setdefault("FLAGOPS_BIND_ADDRESS", "127.0.0.1")
        # Tests follow every analysis through status; the tests of the heartbeat itself
        # (and the benchmarks) set their own.
        env.setdefault("FLAGOPS_STATUS_HEARTBEAT", "0")
        self.process = ManagedProcess(name, argv, self._log_dir / f"{name}.log", env=env)

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def start(self, timeout: float = 60) -> OperatorProcess:
        self.process.start()
        wait_for(
            self._healthy,
            timeout=timeout,
            message=f"operator not healthy: {self.process.describe_failure()}",
        )
        return self

    def _healthy(self) -> bool:
        if not self.process.running():
            raise RuntimeError(self.process.describe_failure())
        url = f"http://127.0.0.1:{self.health_port}/healthz"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as response:  # noqa: S310
            text: str = response.read().decode()
            return text

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        """SIGKILL: no cleanup handlers run, as when a node dies."""
        pid = self.process.pid
        if pid is not None and self.process.running():
            os.kill(pid, signal.SIGKILL)
        self.process.stop(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
