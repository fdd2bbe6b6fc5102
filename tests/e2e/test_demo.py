"""`python -m flagops_devtools.demo --fast` end to end: its outcome, and that it leaves
nothing behind.

Every process the demo starts inherits a marker in its environment, so a leak is
found by scanning /proc even when the leaked process was re-parented.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.prometheus]

MARKER = "FLAGOPS_DEMO_TEST_RUN"
DEADLINE = 420


def _marked_processes(run_id: str) -> list[str]:
    """Live processes carrying the run's marker: 'pid cmdline' each."""
    needle = f"{MARKER}={run_id}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle not in (proc / "environ").read_bytes().split(b"\0"):
                continue
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone while we looked
        if state != "Z":
            found.append(f"{proc.name} {cmdline[:200]}")
    return found


def _carries_marker(pid: int, run_id: str) -> bool:
    """The pid is a live (non-zombie) process of this run (not a reused pid)."""
    return any(entry.startswith(f"{pid} ") for entry in _marked_processes(run_id))


def _line(output: str, prefix: str) -> dict[str, Any]:
    for line in output.splitlines():
        if line.startswith(prefix):
            parsed: dict[str, Any] = json.loads(line[len(prefix) :])
            return parsed
    raise AssertionError(f"no {prefix!r} line in the demo's output:\n{output[-4000:]}")


def _start(run_id: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, MARKER: run_id}
    with log.open("wb") as out:
        # From outside the checkout: the demo finds what it needs without a working directory.
        return subprocess.Popen(
            [sys.executable, "-m", "flagops_devtools.demo", "--fast"],
            cwd=log.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _finish(process: subprocess.Popen[bytes], timeout: float) -> int:
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # the demo's own clean-up path
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        raise


def test_demo_reaches_full_rolls_back_the_spike_and_leaves_nothing(tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex
    log = tmp_path / "demo.log"
    process = _start(run_id, log)
    try:
        code = _finish(process, DEADLINE)
    finally:
        output = log.read_text(errors="replace")
    assert code == 0, output[-6000:]

    result = _line(output, "demo result: ")
    calendar = result["rollouts"]["calendar-sync"]
    assert (calendar["stage"], calendar["phase"]) == ("FULL", "Completed")
    shopping = result["rollouts"]["shopping-list-sync"]
    assert (shopping["stage"], shopping["phase"]) == ("DISABLED", "RolledBack")
    # Every stage decision, the rollback included, reached the app through the relay in
    # under a second, and headless chromium timed the first step on both page paths.
    assert calendar["reach_within_promise"] and shopping["reach_within_promise"], result
    assert set(calendar["reach_ms"]) >= {"INTERNAL", "FULL"}, result
    assert shopping["reach_ms"]["DISABLED"] is not None, result
    assert set(result["browser_ms"]) == {"openfeature", "flagops"}, result
    assert "meal-plan web page: http://127.0.0.1:" in output
    # The Events say why: each stage step on a passing analysis, then the rollback's cause.
    assert "StageAdvanced  GENERAL -> FULL" in output
    rolled_back = [line for line in output.splitlines() if "RolledBack" in line and "event" in line]
    assert rolled_back, output[-4000:]
    assert "> threshold 5.00%" in rolled_back[0]
    assert "flags.json" in output and "jonas (-)" in output  # flags and users table printed

    pids = _line(output, "demo pids: ")
    expected = {"etcd", "kube-apiserver", "kube-controller-manager", "prometheus", "flagops-relay"}
    assert expected <= set(pids), pids
    assert _marked_processes(run_id) == []
    left = [f"{name} ({pid})" for name, pid in pids.items() if _carries_marker(pid, run_id)]
    assert left == [], f"still running: {left}"


def test_demo_interrupted_stops_everything(tmp_path: Path) -> None:
    run_id = uuid.uuid4().hex
    log = tmp_path / "demo.log"
    process = _start(run_id, log)
    try:
        wait_for(
            lambda: "demo pids: " in log.read_text(errors="replace"),
            timeout=180,
            interval=0.5,
            message="the demo did not start its parts",
        )
        assert process.poll() is None
        process.send_signal(signal.SIGINT)  # Ctrl-C
        code = _finish(process, 90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text(errors="replace")
    assert code == 130, output[-4000:]
    assert "stopped everything the demo started" in output
    assert _marked_processes(run_id) == []
