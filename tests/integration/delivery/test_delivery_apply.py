"""Every chart rendering and the kustomize install, checked by the real apiserver."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from delivery_cluster import dry_run
from delivery_tools import CHART, INSTALL, VALUE_SETS, documents, helm_template, run

from flagops_devtools.testing.controlplane import ControlPlane

pytestmark = pytest.mark.integration


@pytest.fixture
def watched(delivery_crds: ControlPlane) -> Iterator[list[str]]:
    names = [delivery_crds.create_namespace() for _ in range(2)]
    yield names
    for name in names:
        delivery_crds.delete_namespace(name)


def applied(output: str) -> set[tuple[str, str]]:
    """(kind, name) from kubectl's `kind.group/name created (server dry run)` lines."""
    found = set()
    for line in output.splitlines():
        match = re.match(r"^(?P<resource>[^/ ]+)/(?P<name>\S+) \w+ \(server dry run\)$", line)
        assert match, line
        found.add((match["resource"].split(".")[0], match["name"]))
    return found


@pytest.mark.parametrize("name", list(VALUE_SETS))
def test_chart_rendering_passes_server_dry_run(
    delivery_crds: ControlPlane,
    namespace: str,
    watched: list[str],
    helm: Path,
    tmp_path: Path,
    name: str,
) -> None:
    values: dict[str, Any] = dict(VALUE_SETS[name])
    if "watchNamespaces" in values:
        values["watchNamespaces"] = watched
    manifest = helm_template(helm, values, tmp_path, namespace=namespace)
    docs = documents(manifest)
    output = dry_run(delivery_crds, manifest)
    expected = {(d["kind"].lower(), d["metadata"]["name"]) for d in docs}
    assert applied(output) == expected
    if name == "namespaced":
        assert {d["metadata"].get("namespace") for d in docs if d["kind"] == "Role"} == set(watched)


def test_a_broken_rendering_is_rejected(
    delivery_crds: ControlPlane, namespace: str, helm: Path, tmp_path: Path
) -> None:
    # The dry run is only worth something if the apiserver really validates.
    docs = documents(helm_template(helm, {}, tmp_path, namespace=namespace))
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"] = "x"
    result = delivery_crds.kubectl(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-f",
        "-",
        input=yaml.safe_dump_all(docs),
        check=False,
    )
    assert result.returncode != 0
    assert "runAsUser" in result.stderr


def test_helm_install_dry_run_against_the_apiserver(
    delivery_crds: ControlPlane, namespace: str, helm: Path
) -> None:
    result = run(
        helm,
        "install",
        "flagops",
        CHART,
        "--dry-run=server",
        "--namespace",
        namespace,
        "--kubeconfig",
        delivery_crds.kubeconfig,
        "--set",
        "watchNamespaces={a,b}",
    )
    assert result.returncode == 0, result.stderr
    assert "Watching: namespaces a, b (Roles only)" in result.stdout
    assert "kubectl apply --server-side -f crds/" in result.stdout


def test_kustomize_install_passes_server_dry_run(delivery_crds: ControlPlane) -> None:
    rendered = delivery_crds.kubectl("kustomize", str(INSTALL)).stdout
    # A dry run does not create the namespace the other objects go into.
    delivery_crds.kubectl("apply", "-f", str(INSTALL / "namespace.yaml"))
    output = dry_run(delivery_crds, rendered)
    expected = {(d["kind"].lower(), d["metadata"]["name"]) for d in documents(rendered)}
    assert applied(output) == expected


def test_kustomize_relay_add_on_applies(delivery_crds: ControlPlane) -> None:
    # Applied for real (not a dry run): the Secret example and the relay objects are
    # accepted by the apiserver, and kubectl finds them again after the apply.
    relay = INSTALL / "relay"
    delivery_crds.kubectl("apply", "-f", str(INSTALL / "namespace.yaml"))
    rendered = delivery_crds.kubectl("kustomize", str(relay)).stdout
    docs = documents(rendered)
    example = documents((relay / "tokens-secret.example.yaml").read_text())
    manifest = yaml.safe_dump_all(example + docs)
    try:
        delivery_crds.kubectl(
            "apply",
            "--server-side",
            "--field-manager=flagops-delivery-tests",
            "-f",
            "-",
            input=manifest,
        )
        for doc in docs:
            namespace = doc["metadata"].get("namespace")
            args = ["get", doc["kind"].lower(), doc["metadata"]["name"], "-o", "name"]
            if namespace:
                args += ["-n", namespace]
            assert delivery_crds.kubectl(*args).stdout.strip()
        deployment = delivery_crds.kubectl(
            "get", "deployment", "flagops-relay", "-n", "flagops-system", "-o", "json"
        ).stdout
        assert '"replicas": 2' in deployment
    finally:
        delivery_crds.kubectl(
            "delete", "--ignore-not-found", "--wait=false", "-f", "-", input=manifest
        )


def test_examples_pass_server_dry_run(delivery_crds: ControlPlane, namespace: str) -> None:
    examples = INSTALL.parent / "examples"
    rendered = delivery_crds.kubectl("kustomize", str(examples)).stdout
    rendered += "\n---\n" + (examples / "calendar-probe-credentials.yaml").read_text()
    output = delivery_crds.kubectl(
        "apply",
        "--dry-run=server",
        "--validate=strict",
        "-n",
        namespace,
        "-f",
        "-",
        input=rendered,
    ).stdout
    expected = {(d["kind"].lower(), d["metadata"]["name"]) for d in documents(rendered)}
    assert applied(output) == expected
    assert ("rollout", "calendar-sync") in expected
