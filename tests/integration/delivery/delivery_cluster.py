"""Helpers of the delivery integration tests."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

from delivery_tools import documents, helm_template

from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.process import ManagedProcess, free_port
from flagops_devtools.testing.wait import wait_for

RUNTIME_KINDS = {"Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget"}


def dry_run(plane: ControlPlane, manifest: str) -> str:
    """kubectl apply --dry-run=server with strict field validation; the output on success."""
    result = plane.kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", input=manifest, check=False
    )
    assert result.returncode == 0, f"server-side dry run rejected:\n{result.stderr}"
    return result.stdout


class Install:
    def __init__(self, plane: ControlPlane, namespace: str, values: dict[str, Any]) -> None:
        self.plane = plane
        self.namespace = namespace
        self.values = values
        self.service_account = ""
        self.relay_service_account = ""
        self.cluster_objects: list[tuple[str, str]] = []

    def apply(self, helm: Path, tmp_path: Path) -> None:
        """The chart's identity objects, applied for real (no Deployment: the test runs it)."""
        release = f"lp-{self.namespace}"
        docs = [
            d
            for d in documents(
                helm_template(
                    helm, self.values, tmp_path, namespace=self.namespace, release=release
                )
            )
            if d["kind"] not in RUNTIME_KINDS
        ]
        accounts = {
            d["metadata"]["labels"]["app.kubernetes.io/component"]: d["metadata"]["name"]
            for d in docs
            if d["kind"] == "ServiceAccount"
        }
        self.service_account = accounts["operator"]
        self.relay_service_account = accounts.get("relay", "")
        self.cluster_objects = [
            (d["kind"].lower(), d["metadata"]["name"])
            for d in docs
            if "namespace" not in d["metadata"]
        ]
        self.plane.kubectl(
            "apply",
            "-f",
            "-",
            input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}),
        )

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def can_i(self, verb: str, resource: str, namespace: str) -> bool:
        result = self.plane.kubectl(
            "auth", "can-i", verb, resource, "-n", namespace, f"--as={self.user}", check=False
        )
        return result.stdout.strip() == "yes"

    def delete(self) -> None:
        for kind, name in self.cluster_objects:
            self.plane.kubectl("delete", kind, name, "--ignore-not-found", check=False)


def run_operator(
    plane: ControlPlane,
    install: Install,
    tmp_path: Path,
    configmap: str,
    prometheus: str,
    *extra: str,
) -> ManagedProcess:
    kubeconfig = plane.make_service_account_kubeconfig(install.namespace, install.service_account)
    health_port = free_port()
    process = ManagedProcess(
        "flagops-operator",
        [
            sys.executable,
            "-m",
            "flagops.cli.main",
            "run",
            f"--configmap-name={configmap}",
            f"--metrics-port={free_port()}",
            f"--health-port={health_port}",
            "--log-format=text",
            # Validation has Prometheus check the queries; the first stage needs no traffic.
            f"--prometheus-address={prometheus}",
            *extra,
        ],
        tmp_path / "operator.log",
        env={
            "KUBECONFIG": str(kubeconfig),
            "FLAGOPS_BIND_ADDRESS": "127.0.0.1",
            "PATH": "/usr/bin:/bin",
        },
    )
    process.start()

    def healthy() -> bool:
        assert process.running(), process.describe_failure()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    wait_for(healthy, timeout=60, message="operator /healthz")
    return process
