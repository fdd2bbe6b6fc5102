"""`kubectl flagops ...`: the console script found by kubectl on PATH, as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import pytest
from cli_helpers import VENV_BIN, create_flag, create_rollout
from kubernetes import client

from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration


def plugin_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def kubectl(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", *args], env=plugin_env(**env), capture_output=True, text=True, timeout=60
    )


def test_kubectl_finds_the_plugin() -> None:
    result = kubectl("plugin", "list")
    assert str(VENV_BIN / "kubectl-flagops") in result.stdout


def test_kubectl_flagops_flags(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi
) -> None:
    create_flag(custom, namespace, "export-pdf", key="export_pdf", enabled=True, rolloutPercent=100)
    result = kubectl("flagops", "flags", "-n", namespace, "--kubeconfig", kubeconfig)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == [
        "KEY", "ENABLED", "PERCENT", "COHORTS", "STAGE", "SOURCE",
    ]  # fmt: skip
    assert result.stdout.splitlines()[1].split()[:3] == ["export_pdf", "true", "100"]
    # KUBECONFIG from the environment, like kubectl.
    result = kubectl("flagops", "flags", "-n", namespace, KUBECONFIG=kubeconfig)
    assert result.returncode == 0, result.stderr
    assert "export_pdf" in result.stdout


def test_kubectl_passes_the_exit_code_through(kubeconfig: str, namespace: str) -> None:
    result = kubectl("flagops", "pause", "nope", "-n", namespace, "--kubeconfig", kubeconfig)
    assert result.returncode == 4
    assert result.stderr.strip() == f'error: rollout "nope" not found in namespace "{namespace}"'
    result = kubectl("flagops", "pause")
    assert result.returncode == 2
    assert "usage:" in result.stderr


def test_status_watch_follows_until_ctrl_c(
    kubeconfig: str, namespace: str, custom: client.CustomObjectsApi
) -> None:
    create_flag(custom, namespace, "f")
    create_rollout(custom, namespace, "r", "f")
    process = subprocess.Popen(
        ["kubectl-flagops", "status", "r", "-w", "-n", namespace, "--kubeconfig", kubeconfig],
        env=plugin_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")))  # type: ignore[union-attr]
    reader.start()
    try:
        wait_for(lambda: "---\n" in lines, timeout=30, message="no first status printed")
        # Stand-in for the controller writing a new stage.
        custom.patch_namespaced_custom_object_status(
            "flagops.dev", "v1alpha1", namespace, "rollouts", "r",
            {"status": {"stage": "LIMITED", "phase": "Progressing", "currentPercent": 50}},
        )  # fmt: skip
        wait_for(
            lambda: any(line.startswith("Stage:       LIMITED (50%)") for line in lines),
            timeout=30,
            message="status -w did not show the change",
        )
    finally:
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        reader.join(timeout=10)
    stderr = process.stderr.read() if process.stderr else ""
    assert code == 0
    assert "Traceback" not in stderr
    assert lines[0].startswith("Rollout:     r")
