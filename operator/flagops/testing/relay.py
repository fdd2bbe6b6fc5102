"""Runs `flagops relay` as a real child process against a control plane (tests, demo, bench)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flagops.testing.process import ManagedProcess, Service, free_port
from flagops.testing.wait import wait_for


class RelayProcess(Service):
    def __init__(
        self,
        kubeconfig: Path,
        namespaces: Sequence[str] = (),
        *,
        tokens: Sequence[Mapping[str, Any]] | None = None,
        extra_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
        name: str = "flagops-relay",
        port: int | None = None,
        taskset_cpu: int | None = None,
    ) -> None:
        self.port = port or free_port()
        self.metrics_port = free_port()
        self.dir = log_dir or Path(tempfile.mkdtemp(prefix="flagops-relay-"))
        self.tokens_file = self.dir / "tokens.yaml"
        argv = [
            sys.executable,
            "-m",
            "flagops.cli.main",
            "relay",
            "--port",
            str(self.port),
            "--metrics-port",
            str(self.metrics_port),
            "--bind-address",
            "127.0.0.1",
            "--log-format",
            "text",
        ]
        if tokens is not None:
            self.write_tokens(tokens)
            argv += ["--tokens-file", str(self.tokens_file)]
        for namespace in namespaces:
            argv += ["--namespace", namespace]
        argv += list(extra_args)
        if taskset_cpu is not None:
            argv = ["taskset", "-c", str(taskset_cpu), *argv]
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), **(extra_env or {})}
        self.process = ManagedProcess(name, argv, self.dir / f"{name}.log", env=env)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}"

    @property
    def log_path(self) -> Path:
        return self.process.log_path

    def write_tokens(self, tokens: Sequence[Mapping[str, Any]]) -> None:
        # Written aside and renamed, as kubelet swaps a mounted Secret: never half a file.
        staging = self.tokens_file.with_suffix(".tmp")
        staging.write_text(json.dumps({"tokens": list(tokens)}))
        staging.replace(self.tokens_file)

    def start(self, timeout: float = 60, ready: bool = True) -> RelayProcess:
        self.process.start()
        wait_for(
            self._ready if ready else self._alive,
            timeout=timeout,
            message=f"relay not ready: {self.process.describe_failure()}",
        )
        return self

    def _alive(self) -> bool:
        return self.health("/healthz")[0] == 200

    def _ready(self) -> bool:
        return self.health("/readyz")[0] == 200

    def health(self, path: str = "/readyz") -> tuple[int, dict[str, Any]]:
        if not self.process.running():
            raise RuntimeError(self.process.describe_failure())
        try:
            with urllib.request.urlopen(self.metrics_url + path, timeout=2) as response:  # noqa: S310
                return int(response.status), json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url + "/metrics", timeout=5) as response:  # noqa: S310
            text: str = response.read().decode()
            return text

    def stop(self) -> None:
        self.process.stop()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")
