"""The chart's RBAC is enough for the operator and no more: no Secrets, no wildcards.

The operator runs as the chart's ServiceAccount (a bound token), in cluster mode
and in namespaced mode, and publishes a flag; `kubectl auth can-i --list` shows
what that identity may do.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from delivery_cluster import Install, run_operator

from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.process import ManagedProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

MUST = [
    ("list", "featureflags.flagops.dev"),
    ("watch", "rollouts.flagops.dev"),
    ("patch", "rollouts.flagops.dev/status"),
    ("create", "configmaps"),
    ("update", "configmaps"),
    ("delete", "configmaps"),  # copies shared into other namespaces (docs/sharing.md)
    ("create", "jobs.batch"),
    ("delete", "jobs.batch"),
    ("get", "pods"),
    ("create", "events"),
    ("create", "events.events.k8s.io"),
]
MUST_NOT = [
    ("get", "secrets"),
    ("list", "secrets"),
    ("watch", "secrets"),
    ("create", "featureflags.flagops.dev"),
    ("delete", "featureflags.flagops.dev"),
    ("update", "rollouts.flagops.dev"),
    ("delete", "rollouts.flagops.dev"),
    ("create", "pods"),
    ("delete", "pods"),
    ("create", "deployments.apps"),
    ("escalate", "clusterroles.rbac.authorization.k8s.io"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("impersonate", "serviceaccounts"),
    ("create", "serviceaccounts/token"),
]


def can_i_list(install: Install, namespace: str) -> list[list[str]]:
    text = install.plane.kubectl(
        "auth", "can-i", "--list", "-n", namespace, f"--as={install.user}"
    ).stdout
    print(f"kubectl auth can-i --list -n {namespace} --as={install.user}\n{text}")
    rows = [line.split(None, 1) for line in text.splitlines()[1:] if line.strip()]
    # Resources   Non-Resource URLs   Resource Names   Verbs: keep resource rows only.
    return [
        [row[0], row[1].rsplit("[", 1)[1].rstrip("]")] for row in rows if not row[0].startswith("[")
    ]


def assert_least_privilege(install: Install, namespace: str) -> None:
    rows = can_i_list(install, namespace)
    assert rows
    for resource, verbs in rows:
        assert "secrets" not in resource, resource
        assert "*" not in resource, resource
        assert "*" not in verbs.split(), (resource, verbs)
    for verb, resource in MUST:
        assert install.can_i(verb, resource, namespace), f"cannot {verb} {resource}"
    for verb, resource in MUST_NOT:
        assert not install.can_i(verb, resource, namespace), f"can {verb} {resource}"


def publish_flag(
    plane: ControlPlane,
    namespace: str,
    configmap: str,
    process: ManagedProcess,
    timeout: float = 60,
) -> None:
    plane.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps(
            {
                "apiVersion": "flagops.dev/v1alpha1",
                "kind": "FeatureFlag",
                "metadata": {"name": "calendar-sync"},
                "spec": {"key": "calendar_sync", "enabled": True, "rolloutPercent": 10},
            }
        ),
    )

    def published() -> dict[str, Any] | None:
        assert process.running(), process.describe_failure()
        result = plane.kubectl(
            "get", "configmap", configmap, "-n", namespace, "-o", "json", check=False
        )
        if result.returncode != 0:
            return None
        flags: dict[str, Any] = json.loads(json.loads(result.stdout)["data"]["flags.json"])["flags"]
        return flags.get("calendar_sync")

    try:
        flag = wait_for(
            published, timeout=timeout, message=f"{configmap} with calendar_sync in {namespace}"
        )
    except TimeoutError as error:
        raise AssertionError(f"{error}\n{process.describe_failure()}") from error
    assert flag["enabled"] is True
    assert flag["rolloutPercent"] == 10


def change_stage(
    plane: ControlPlane, namespace: str, configmap: str, process: ManagedProcess
) -> None:
    """A Rollout takes a flag that is off from DISABLED to INTERNAL (no traffic needed)."""
    flag = {
        "apiVersion": "flagops.dev/v1alpha1",
        "kind": "FeatureFlag",
        "metadata": {"name": "push-notifications"},
        "spec": {
            "key": "push_notifications",
            "enabled": False,
            "allowedCohorts": ["beta"],
            "integration": "push_notifications",
        },
    }
    rollout = {
        "apiVersion": "flagops.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "push-notifications"},
        "spec": {"flagRef": {"name": "push-notifications"}, "targetStage": "INTERNAL"},
    }
    plane.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        "-",
        input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [flag, rollout]}),
    )

    last: dict[str, Any] = {}

    def completed() -> dict[str, Any] | None:
        assert process.running(), process.describe_failure()
        result = plane.kubectl(
            "get", "rollouts.flagops.dev", "push-notifications", "-n", namespace, "-o", "json"
        )
        status: dict[str, Any] = json.loads(result.stdout).get("status", {})
        last.update(status)
        return status if status.get("phase") == "Completed" else None

    def published_at_internal() -> dict[str, Any] | None:
        # The status write comes first and the ConfigMap write follows it (the publisher
        # reacts to the Rollout's new stage), so wait for the flag's entry too.
        data = plane.kubectl("get", "configmap", configmap, "-n", namespace, "-o", "json").stdout
        flags = json.loads(json.loads(data)["data"]["flags.json"])["flags"]
        entry: dict[str, Any] | None = flags.get("push_notifications")
        return entry if entry and entry.get("stage") == "INTERNAL" else None

    try:
        status = wait_for(completed, timeout=60, message="Rollout Completed at INTERNAL")
        published = wait_for(
            published_at_internal, timeout=30, message="INTERNAL published in the ConfigMap"
        )
    except (TimeoutError, AssertionError) as error:
        raise AssertionError(f"{error}\nstatus: {last}\n{process.describe_failure()}") from error
    assert status["stage"] == "INTERNAL"
    assert published["enabled"] is True
    assert published["stage"] == "INTERNAL"
    assert "internal" in published["allowedCohorts"]
    events = plane.kubectl(
        "get",
        "events",
        "-n",
        namespace,
        "--field-selector",
        "involvedObject.name=push-notifications,involvedObject.kind=Rollout",
        "-o",
        "json",
    ).stdout
    assert json.loads(events)["items"], "the operator posted Events on the Rollout"


def test_cluster_mode_rbac_is_enough_and_no_more(
    delivery_crds: ControlPlane,
    install_factory: Any,
    apps_namespace: str,
    tmp_path: Path,
    prometheus_server: Any,
) -> None:
    prometheus = prometheus_server([]).url
    peering = f"lp-{apps_namespace}"
    install = install_factory({"peering": peering})
    assert_least_privilege(install, apps_namespace)
    assert install.can_i("list", "namespaces", apps_namespace)
    assert install.can_i("patch", f"clusterkopfpeerings.kopf.dev/{peering}", apps_namespace)

    configmap = f"flags-{apps_namespace}"
    process = run_operator(
        delivery_crds, install, tmp_path, configmap, prometheus, f"--peering={peering}"
    )
    try:
        publish_flag(delivery_crds, apps_namespace, configmap, process)
        change_stage(delivery_crds, apps_namespace, configmap, process)
    finally:
        process.stop()
    log = (tmp_path / "operator.log").read_text()
    # RBAC denials only: a cluster-wide operator also meets other tests' terminating namespaces.
    denied = re.findall(r'is forbidden: User "[^"]+" cannot [^"]+', log)
    assert not denied, denied[:3]
    assert "Not enough permissions" not in log, log[-3000:]


def test_namespaced_mode_rbac_is_enough_and_no_more(
    delivery_crds: ControlPlane,
    install_factory: Any,
    apps_namespace: str,
    tmp_path: Path,
    prometheus_server: Any,
) -> None:
    prometheus = prometheus_server([]).url
    install = install_factory({"watchNamespaces": [apps_namespace]})
    assert install.cluster_objects == []
    assert_least_privilege(install, apps_namespace)
    # Nothing outside the watched namespace, nothing cluster-wide.
    other = install.namespace
    assert not install.can_i("list", "featureflags.flagops.dev", other)
    assert not install.can_i("create", "configmaps", other)
    assert not install.can_i("list", "namespaces", apps_namespace)
    assert not install.can_i("list", "customresourcedefinitions.apiextensions.k8s.io", other)

    configmap = f"flags-{apps_namespace}"
    process = run_operator(
        delivery_crds, install, tmp_path, configmap, prometheus, f"--namespace={apps_namespace}"
    )
    try:
        # Without namespace and CRD list rights kopf retries those lists with backoff (about
        # 55s) before falling back to the given namespaces, unless the operator turns kopf's
        # scanning off in namespaced mode.
        publish_flag(delivery_crds, apps_namespace, configmap, process, timeout=120)
        change_stage(delivery_crds, apps_namespace, configmap, process)
    finally:
        process.stop()
