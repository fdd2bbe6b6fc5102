"""`flagops probe calendar_sync` as the probe Job runs it, against the local server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from flagops_devtools.calendar_server import CalendarServer, Fault

pytestmark = pytest.mark.integration

RESULT_KEYS = {"integration", "healthy", "status", "message", "latencyMs", "checkedAt"}
REPO = Path(__file__).resolve().parents[3]


def run_probe(
    env_extra: dict[str, str], *args: str, timeout: float = 60
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAGOPS_")}
    env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, "-m", "flagops.cli.main", "probe", "calendar_sync", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout + proc.stderr
    return proc, json.loads(lines[0])


@pytest.fixture
def probe_env(
    calendar_server: CalendarServer, service_account_file: Path, secret_mount: Path, tmp_path: Path
) -> dict[str, str]:
    # As the Job mounts it: the Secret folder (with kubelet's ..data link), not the file.
    (secret_mount / "..data").symlink_to(secret_mount)
    return {
        "FLAGOPS_PROBE_CREDENTIALS_FILE": str(secret_mount),
        "FLAGOPS_CALENDAR_API_ENDPOINT": calendar_server.url,
        "FLAGOPS_TOKEN_URI": calendar_server.token_uri,
        "FLAGOPS_CALENDAR_ID": "primary",
        "FLAGOPS_TERMINATION_LOG": str(tmp_path / "termination-log"),
        "FLAGOPS_FLAGS_PATH": str(tmp_path / "no-flags.json"),
        "FLAGOPS_PROBE_CONFIG": json.dumps({"retry_backoff_scale": 0.01}),
    }


def test_probe_healthy(
    probe_env: dict[str, str], calendar_server: CalendarServer, tmp_path: Path
) -> None:
    proc, result = run_probe(probe_env)
    assert proc.returncode == 0, proc.stderr
    assert set(result) == RESULT_KEYS
    assert result["integration"] == "calendar_sync"
    assert result["healthy"] is True and result["status"] == "CONNECTED"
    assert result["message"] == "calendar owner@flagops.test reachable"
    assert result["latencyMs"] > 0 and result["checkedAt"].endswith("Z")
    termination = (tmp_path / "termination-log").read_text().strip()
    assert json.loads(termination) == result
    assert calendar_server.count("calendarList.get", status=200) == 1
    # The flag is off (no flags file): the probe checks health anyway.


def test_probe_termination_log_flag_overrides_env(
    probe_env: dict[str, str], tmp_path: Path
) -> None:
    target = tmp_path / "explicit-log"
    proc, result = run_probe(probe_env, "--termination-log", str(target))
    assert proc.returncode == 0
    assert json.loads(target.read_text()) == result
    assert not (tmp_path / "termination-log").exists()


def test_probe_token_endpoint_401(
    probe_env: dict[str, str], calendar_server: CalendarServer, tmp_path: Path
) -> None:
    calendar_server.script("token", Fault.token_error(401, "invalid_client"))
    proc, result = run_probe(probe_env)
    assert proc.returncode == 1
    assert result["healthy"] is False and result["status"] == "ERROR"
    assert "invalid_client" in result["message"]
    assert json.loads((tmp_path / "termination-log").read_text()) == result


def test_probe_api_500(probe_env: dict[str, str], calendar_server: CalendarServer) -> None:
    calendar_server.script("calendarList.get", *[Fault.server_error()] * 4)
    proc, result = run_probe(probe_env)
    assert proc.returncode == 1
    assert result["healthy"] is False and result["status"] == "ERROR"
    assert "HTTP 500" in result["message"]
    assert calendar_server.count("calendarList.get", status=500) == 4  # 1 + 3 retries


def test_probe_rate_limited(probe_env: dict[str, str], calendar_server: CalendarServer) -> None:
    calendar_server.script("calendarList.get", *[Fault.too_many_requests(30)] * 4)
    proc, result = run_probe(probe_env)
    assert proc.returncode == 1
    assert result["status"] == "RATE_LIMITED"


def test_probe_times_out(probe_env: dict[str, str]) -> None:
    # A listener that never answers: the request hangs until the probe's own deadline.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        env = {
            **probe_env,
            "FLAGOPS_CALENDAR_API_ENDPOINT": f"http://127.0.0.1:{silent.getsockname()[1]}",
        }
        started = time.monotonic()
        proc, result = run_probe(env, "--timeout", "2")
    assert proc.returncode == 1
    assert result["message"].startswith("health check timed out after")
    assert result["healthy"] is False and result["status"] == "ERROR"
    assert time.monotonic() - started < 20


def test_probe_unknown_integration_and_missing_credentials(
    probe_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**probe_env, "FLAGOPS_PROBE_CREDENTIALS_FILE": str(tmp_path / "nowhere")}
    proc, result = run_probe(env)
    assert proc.returncode == 1
    assert "credentials_file is required" in result["message"]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flagops.cli.probe",
            "no_such_integration",
            "--termination-log",
            str(tmp_path / "t"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert proc.returncode == 1
    assert "no integration named 'no_such_integration'" in json.loads(proc.stdout)["message"]


def test_probe_prints_no_secret(
    probe_env: dict[str, str],
    service_account_file: Path,
    calendar_server: CalendarServer,
    tmp_path: Path,
) -> None:
    calendar_server.script("token", Fault.token_error(400, "invalid_grant"))
    key = json.loads(service_account_file.read_text())
    secret_lines = [line for line in key["private_key"].splitlines() if len(line) > 20]
    outputs = []
    for _ in range(2):  # failing, then healthy
        proc, _result = run_probe(probe_env)
        outputs.append(proc.stdout + proc.stderr + (tmp_path / "termination-log").read_text())
    text = "\n".join(outputs)
    for secret in [*secret_lines, key["private_key_id"], *calendar_server.issued_tokens()]:
        assert secret not in text
