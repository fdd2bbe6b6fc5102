"""The chart's relay identity reads flag ConfigMaps and nothing else, and that is enough.

The relay runs as the chart's relay ServiceAccount (a bound token) and serves a
namespace's flags; `kubectl auth can-i` shows what that identity may do.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from delivery_cluster import Install

from flagops.flags.document import build_document
from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.relay import RelayProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

TOKEN = "least-privilege-relay-token-0001"
MAY = [("get", "configmaps"), ("list", "configmaps"), ("watch", "configmaps")]
MAY_NOT = [
    ("create", "configmaps"),
    ("update", "configmaps"),
    ("patch", "configmaps"),
    ("delete", "configmaps"),
    ("get", "secrets"),
    ("list", "secrets"),
    ("list", "featureflags.flagops.dev"),
    ("list", "rollouts.flagops.dev"),
    ("list", "pods"),
    ("create", "events"),
    ("list", "namespaces"),
    ("create", "serviceaccounts/token"),
]


def can_i(install: Install, verb: str, resource: str, namespace: str) -> bool:
    user = f"system:serviceaccount:{install.namespace}:{install.relay_service_account}"
    result = install.plane.kubectl(
        "auth", "can-i", verb, resource, "-n", namespace, f"--as={user}", check=False
    )
    return result.stdout.strip() == "yes"


@pytest.mark.parametrize("mode", ["cluster", "namespaced"])
def test_relay_rbac_is_enough_and_no_more(
    delivery_crds: ControlPlane,
    install_factory: Any,
    apps_namespace: str,
    tmp_path: Path,
    mode: str,
) -> None:
    values: dict[str, Any] = {"relay": {"enabled": True}, "peering": f"lp-{apps_namespace}"}
    if mode == "namespaced":
        values["watchNamespaces"] = [apps_namespace]
    install = install_factory(values)
    assert install.relay_service_account.endswith("-relay")
    for verb, resource in MAY:
        assert can_i(install, verb, resource, apps_namespace), f"cannot {verb} {resource}"
    for verb, resource in MAY_NOT:
        assert not can_i(install, verb, resource, apps_namespace), f"can {verb} {resource}"
    if mode == "namespaced":
        assert not can_i(install, "list", "configmaps", install.namespace)

    text, revision = build_document({"calendar_sync": {"enabled": True, "rolloutPercent": 100}})
    delivery_crds.kubectl(
        "apply",
        "-n",
        apps_namespace,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "feature-flags",
                    "labels": {"app.kubernetes.io/managed-by": "flagops"},
                },
                "data": {"flags.json": text},
            }
        ),
    )
    kubeconfig = delivery_crds.make_service_account_kubeconfig(
        install.namespace, install.relay_service_account
    )
    namespaces = [apps_namespace] if mode == "namespaced" else []
    relay = RelayProcess(
        kubeconfig,
        namespaces,
        tokens=[{"token": TOKEN, "namespaces": [apps_namespace]}],
        log_dir=tmp_path,
    )
    with relay:

        def served() -> str | None:
            request = urllib.request.Request(
                relay.url + "/v1/flags.json", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                found: str = json.loads(response.read())["revision"]
                return found if found == revision else None

        wait_for(served, timeout=30, message="relay serves the namespace as its own identity")
    log = relay.log()
    assert "forbidden" not in log.lower(), log[-2000:]
