"""The local real-services harness itself: control plane, RBAC, CEL, Jobs, GC, Prometheus."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import threading
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.kubelet_standin import (
    CommandResult,
    ProbeInvocation,
    ProbeKubeletStandIn,
)
from flagops_devtools.testing.process import free_port
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.wait import wait_for

PrometheusFactory = Callable[..., PrometheusServer]

pytestmark = pytest.mark.integration


def test_wait_for_returns_first_truthy_value_and_reports_last_error() -> None:
    calls = iter([None, 0, "value"])
    assert wait_for(lambda: next(calls), timeout=5, interval=0) == "value"

    def broken() -> bool:
        raise ValueError("still starting")

    with pytest.raises(TimeoutError, match=r"nothing yet within 0\.2s.*still starting"):
        wait_for(broken, timeout=0.2, interval=0.01, message="nothing yet")


# -- apiserver, authentication, RBAC ------------------------------------------


def test_rbac_denies_unprivileged_user_until_granted(
    control_plane: ControlPlane, namespace: str
) -> None:
    assert "default" in control_plane.kubectl("get", "namespaces", "-o", "name").stdout
    alice = control_plane.make_user_kubeconfig("alice", ["flagops-testers"])

    denied = control_plane.kubectl(
        "get", "configmaps", "-n", namespace, kubeconfig=alice, check=False
    )
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()
    assert 'User "alice"' in denied.stderr

    control_plane.kubectl(
        "create", "role", "cm-reader", "-n", namespace, "--verb=get,list", "--resource=configmaps"
    )
    control_plane.kubectl(
        "create", "rolebinding", "cm-reader", "-n", namespace, "--role=cm-reader",
        "--group=flagops-testers",
    )  # fmt: skip
    wait_for(
        lambda: (
            control_plane.kubectl(
                "get", "configmaps", "-n", namespace, kubeconfig=alice, check=False
            ).returncode
            == 0
        ),
        timeout=30,
        message="alice never got read access through her group",
    )
    # Still nothing outside the granted verbs.
    can_delete = control_plane.kubectl(
        "auth", "can-i", "delete", "configmaps", "-n", namespace, kubeconfig=alice, check=False
    )
    assert can_delete.stdout.strip() == "no"


def test_service_account_kubeconfig_authenticates_as_the_account(
    control_plane: ControlPlane, namespace: str
) -> None:
    kubeconfig = control_plane.make_service_account_kubeconfig(namespace, "prober")
    whoami = control_plane.kubectl("auth", "whoami", "-o", "json", kubeconfig=kubeconfig)
    user = json.loads(whoami.stdout)["status"]["userInfo"]
    assert user["username"] == f"system:serviceaccount:{namespace}:prober"
    denied = control_plane.kubectl("get", "secrets", kubeconfig=kubeconfig, check=False)
    assert "forbidden" in denied.stderr.lower()


def test_pod_security_admission_enforces_restricted(
    control_plane: ControlPlane, kube_api: Any
) -> None:
    restricted = control_plane.create_namespace(
        labels={"pod-security.kubernetes.io/enforce": "restricted"}
    )
    core = client.CoreV1Api(kube_api)
    compliant: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ok"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [
                {
                    "name": "c",
                    "image": "flagops:local",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    privileged: dict[str, Any] = {
        **compliant,
        "metadata": {"name": "bad"},
        "spec": {
            "containers": [{"name": "c", "image": "x", "securityContext": {"privileged": True}}]
        },
    }
    try:
        core.create_namespaced_pod(restricted, _any(compliant), dry_run="All")
        with pytest.raises(ApiException) as denied:
            core.create_namespaced_pod(restricted, _any(privileged), dry_run="All")
        assert denied.value.status == 403
        assert "violates PodSecurity" in str(denied.value.body)
    finally:
        control_plane.delete_namespace(restricted)


def _any(manifest: dict[str, Any]) -> Any:
    """The client accepts plain manifests although its stubs ask for models."""
    return manifest


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_children_die_with_the_process_that_started_them(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import pathlib, sys, threading
        from flagops_devtools.testing.process import ManagedProcess
        child = ManagedProcess("sleeper", ["sleep", "600"], pathlib.Path(sys.argv[1]))
        child.start()
        print(child.pid, flush=True)
        threading.Event().wait()
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "sleeper.log")],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert _alive(child)
    parent.kill()
    parent.wait(10)
    wait_for(lambda: not _alive(child), timeout=10, message="child outlived its SIGKILLed parent")


# -- CRDs with CEL --------------------------------------------------------------

_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "ranges.harness.flagops.dev"},
    "spec": {
        "group": "harness.flagops.dev",
        "names": {"kind": "Range", "plural": "ranges", "singular": "range"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["low", "high"],
                                "properties": {
                                    "low": {"type": "integer"},
                                    "high": {"type": "integer"},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "self.high > self.low",
                                        "message": "high must exceed low",
                                        "fieldPath": ".high",
                                    }
                                ],
                            }
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def range_crd(control_plane: ControlPlane) -> Iterator[str]:
    control_plane.kubectl("apply", "-f", "-", input=json.dumps(_CRD))
    control_plane.kubectl(
        "wait", "--for=condition=Established", "--timeout=60s", "crd/ranges.harness.flagops.dev"
    )
    yield "ranges.harness.flagops.dev"
    control_plane.kubectl("delete", "crd", "ranges.harness.flagops.dev", "--wait=false")


def _range(namespace: str, name: str, low: int, high: int) -> str:
    return json.dumps(
        {
            "apiVersion": "harness.flagops.dev/v1",
            "kind": "Range",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"low": low, "high": high},
        }
    )


def test_crd_cel_rule_is_enforced(
    control_plane: ControlPlane, namespace: str, range_crd: str
) -> None:
    # Discovery of a just-established CRD can lag by a moment in kubectl's cache.
    wait_for(
        lambda: (
            control_plane.kubectl(
                "apply", "-f", "-", input=_range(namespace, "ok", 1, 2), check=False
            ).returncode
            == 0
        ),
        timeout=30,
        message="a valid Range was never accepted",
    )
    rejected = control_plane.kubectl(
        "apply", "-f", "-", input=_range(namespace, "bad", 5, 2), check=False
    )
    assert rejected.returncode != 0
    assert "spec.high" in rejected.stderr
    assert "high must exceed low" in rejected.stderr
    names = control_plane.kubectl("get", "ranges", "-n", namespace, "-o", "name").stdout.split()
    assert names == ["range.harness.flagops.dev/ok"]


# -- Jobs, the kubelet stand-in and kube-controller-manager -------------------


def _probe_job(namespace: str, name: str, args: list[str], **job_spec: Any) -> Any:
    labels = {"flagops.dev/probe": "harness", "flagops.dev/rollout": "harness"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "backoffLimit": 0,
            **job_spec,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "probe",
                            "image": "flagops:local",
                            "command": [sys.executable, "-c"],
                            "args": args,
                            "env": [
                                {"name": "PROBE_NAME", "value": name},
                                {
                                    "name": "PROBE_TOKEN",
                                    "valueFrom": {
                                        "secretKeyRef": {"name": "probe-creds", "key": "token"}
                                    },
                                },
                            ],
                            "volumeMounts": [
                                {"name": "creds", "mountPath": "/etc/probe", "readOnly": True}
                            ],
                        }
                    ],
                    "volumes": [{"name": "creds", "secret": {"secretName": "probe-creds"}}],
                },
            },
        },
    }


# Reads the mounted Secret through its in-container path and writes the result
# to the container's termination-message path; both paths are rewritten locally.
_PROBE_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    token = open(sys.argv[1]).read()
    ok = token == os.environ["PROBE_TOKEN"] == "s3cret" and os.environ["PROBE_NAME"] == sys.argv[3]
    with open(sys.argv[2], "w") as log:
        log.write(json.dumps({"healthy": ok, "tokenLength": len(token)}))
    sys.exit(0 if ok else 3)
    """
)


def _job_condition(batch: Any, namespace: str, name: str) -> str | None:
    job = batch.read_namespaced_job(name, namespace)
    conditions = job.status.conditions if job.status else None
    for condition in conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return str(condition.type)
    return None


def _terminated(core: Any, namespace: str, job: str) -> Any:
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    assert len(pods) == 1
    state = pods[0].status.container_statuses[0].state
    return pods[0], state.terminated


@pytest.fixture
def probe_secret(kube_api: Any, namespace: str) -> str:
    client.CoreV1Api(kube_api).create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="probe-creds"), string_data={"token": "s3cret"}
        ),
    )
    return "probe-creds"


@pytest.mark.parametrize(
    ("name", "expected_code", "condition", "healthy"),
    [("probe-ok", 0, "Complete", True), ("probe-bad", 3, "Failed", False)],
)
def test_probe_job_runs_through_standin_and_job_controller(
    kube_api: Any,
    namespace: str,
    probe_secret: str,
    kubelet_standin: ProbeKubeletStandIn,
    name: str,
    expected_code: int,
    condition: str,
    healthy: bool,
) -> None:
    batch, core = client.BatchV1Api(kube_api), client.CoreV1Api(kube_api)
    # The failing variant passes a name that does not match PROBE_NAME.
    expected_name = name if healthy else "someone-else"
    args = [_PROBE_SCRIPT, "/etc/probe/token", "/dev/termination-log", expected_name]
    batch.create_namespaced_job(namespace, _probe_job(namespace, name, args))

    final = wait_for(
        lambda: _job_condition(batch, namespace, name),
        timeout=60,
        message=f"Job {name} never finished",
    )
    assert final == condition
    pod, terminated = _terminated(core, namespace, name)
    assert pod.status.phase == ("Succeeded" if healthy else "Failed")
    assert terminated.exit_code == expected_code
    assert terminated.reason == ("Completed" if healthy else "Error")
    assert json.loads(terminated.message) == {"healthy": healthy, "tokenLength": 6}
    assert "s3cret" not in terminated.message


def test_job_deadline_kills_the_local_process(
    kube_api: Any, namespace: str, probe_secret: str, kubelet_standin: ProbeKubeletStandIn
) -> None:
    batch = client.BatchV1Api(kube_api)
    args = ["import time\nwhile True: time.sleep(1)"]
    batch.create_namespaced_job(
        namespace, _probe_job(namespace, "probe-hangs", args, activeDeadlineSeconds=2)
    )
    assert wait_for(lambda: _job_condition(batch, namespace, "probe-hangs"), timeout=60) == "Failed"
    job = batch.read_namespaced_job("probe-hangs", namespace)
    assert job.status is not None
    reasons = {c.reason for c in job.status.conditions or [] if c.type == "Failed"}
    assert reasons == {"DeadlineExceeded"}

    def killed() -> list[Any]:
        return [r for r in kubelet_standin.runs if r.namespace == namespace]

    runs = wait_for(killed, timeout=30, message="the stand-in never recorded the killed run")
    assert runs[0].exit_code == 128 + 15  # SIGTERM, as a container runtime reports it


def test_probe_waits_for_a_secret_created_after_the_job(
    kube_api: Any, namespace: str, kubelet_standin: ProbeKubeletStandIn
) -> None:
    batch, core = client.BatchV1Api(kube_api), client.CoreV1Api(kube_api)
    args = [_PROBE_SCRIPT, "/etc/probe/token", "/dev/termination-log", "probe-late"]
    batch.create_namespaced_job(namespace, _probe_job(namespace, "probe-late", args))
    wait_for(
        lambda: core.list_namespaced_pod(namespace, label_selector="job-name=probe-late").items,
        timeout=30,
        message="the Job controller created no pod",
    )
    assert _job_condition(batch, namespace, "probe-late") is None
    core.create_namespaced_secret(
        namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="probe-creds"), string_data={"token": "s3cret"}
        ),
    )
    assert (
        wait_for(lambda: _job_condition(batch, namespace, "probe-late"), timeout=60) == "Complete"
    )


def test_pod_active_deadline_fails_the_pod(
    kube_api: Any, namespace: str, kubelet_standin: ProbeKubeletStandIn
) -> None:
    core = client.CoreV1Api(kube_api)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "slow", "labels": {"flagops.dev/probe": "harness"}},
        "spec": {
            "activeDeadlineSeconds": 1,
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "probe",
                    "image": "flagops:local",
                    "command": [sys.executable, "-c", "import time\nwhile True: time.sleep(1)"],
                }
            ],
        },
    }
    core.create_namespaced_pod(namespace, _any(pod))

    def failed() -> Any:
        status = core.read_namespaced_pod("slow", namespace).status
        return status if status and status.phase == "Failed" else None

    status = wait_for(failed, timeout=30, message="the pod deadline was not enforced")
    assert status.reason == "DeadlineExceeded"
    assert status.container_statuses[0].state.terminated.exit_code == 128 + 15


def test_standin_path_rewriting_and_expansion() -> None:
    from flagops_devtools.testing.kubelet_standin import _expand, _rewrite_paths

    mounts = {"/etc/probe": "/tmp/x/creds", "/etc/probe/extra": "/tmp/x/extra"}
    assert _rewrite_paths("/etc/probe/token", mounts) == "/tmp/x/creds/token"
    assert _rewrite_paths("--file=/etc/probe/extra/a", mounts) == "--file=/tmp/x/extra/a"
    assert _rewrite_paths("/etc/probes/token", mounts) == "/etc/probes/token"
    # The stand-in's own folders live under /tmp, itself a probe mount: one pass only.
    nested = {"/var/run/creds": "/tmp/w/volumes/creds", "/tmp": "/tmp/w/volumes/tmp"}
    assert _rewrite_paths("/var/run/creds/key.json", nested) == "/tmp/w/volumes/creds/key.json"
    assert _rewrite_paths("/tmp/cache", nested) == "/tmp/w/volumes/tmp/cache"
    assert _rewrite_paths("/tmpfs/x", nested) == "/tmpfs/x"
    assert _expand("$(A)-$(B)-$$(A)", {"A": "1"}) == "1-$(B)-$(A)"


def test_command_override_replaces_execution(
    kube_api: Any, namespace: str, probe_secret: str
) -> None:
    seen: list[ProbeInvocation] = []

    def fake_probe(invocation: ProbeInvocation) -> CommandResult:
        seen.append(invocation)
        return CommandResult(exit_code=0, message='{"healthy": true}')

    # No command: the stand-in supplies the flagops image's entrypoint, and
    # expands $(VAR) references the way the kubelet does.
    job = _probe_job(namespace, "probe-override", ["probe", "$(PROBE_NAME)", "$$(literal)"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    del container["command"]
    container["volumeMounts"] = []
    job["spec"]["template"]["spec"]["volumes"] = []
    standin = ProbeKubeletStandIn(
        api_client=kube_api, namespace=namespace, command_override=fake_probe
    )
    with standin:
        client.BatchV1Api(kube_api).create_namespaced_job(namespace, job)
        batch = client.BatchV1Api(kube_api)
        assert (
            wait_for(lambda: _job_condition(batch, namespace, "probe-override"), timeout=60)
            == "Complete"
        )
    assert len(seen) == 1
    assert seen[0].argv == ["flagops", "probe", "probe-override", "$(literal)"]
    assert seen[0].env["PROBE_NAME"] == "probe-override"
    _, terminated = _terminated(client.CoreV1Api(kube_api), namespace, "probe-override")
    assert terminated.message == '{"healthy": true}'


# -- garbage collection -------------------------------------------------------


def test_owner_reference_garbage_collection(kube_api: Any, namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    parent = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="parent"))
    )
    assert parent.metadata is not None
    assert parent.metadata.uid is not None
    owner = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name="parent", uid=parent.metadata.uid
    )
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="child", owner_references=[owner])),
    )
    core.delete_namespaced_config_map("parent", namespace)

    def child_gone() -> bool:
        try:
            core.read_namespaced_config_map("child", namespace)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(child_gone, timeout=60, message="the garbage collector never deleted the child")


def test_namespace_deletion_completes(control_plane: ControlPlane, kube_api: Any) -> None:
    name = control_plane.create_namespace()
    client.CoreV1Api(kube_api).create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="content"))
    )
    control_plane.delete_namespace(name)

    def gone() -> bool:
        try:
            client.CoreV1Api(kube_api).read_namespace(name)
        except ApiException as exc:
            return bool(exc.status == 404)
        return False

    wait_for(gone, timeout=60, message="the namespace controller never finished the deletion")


# -- Prometheus ---------------------------------------------------------------


@pytest.fixture
def exporter() -> Iterator[tuple[str, prometheus_client.Counter]]:
    registry = prometheus_client.CollectorRegistry()
    counter = prometheus_client.Counter(
        "harness_operations", "Operations seen by the harness test", registry=registry
    )
    port = free_port()
    server, thread = prometheus_client.start_http_server(port, "127.0.0.1", registry=registry)
    try:
        yield f"127.0.0.1:{port}", counter
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _counter_value(prometheus: Any) -> float | None:
    result = prometheus.query("harness_operations_total")
    return float(result[0]["value"][1]) if result else None


@pytest.mark.prometheus
def test_prometheus_scrapes_exporter_and_survives_restart(
    prometheus_server: PrometheusFactory, exporter: tuple[str, prometheus_client.Counter]
) -> None:
    target, counter = exporter
    counter.inc(7)
    prometheus = prometheus_server([target])
    prometheus.wait_for_scrape(target)
    wait_for(lambda: _counter_value(prometheus) == 7, timeout=30, message="counter never 7")

    prometheus.stop()
    assert not prometheus.running()
    with pytest.raises(urllib.error.URLError):
        prometheus.query("up")
    counter.inc(3)

    port = prometheus.port
    prometheus.start()
    assert prometheus.port == port
    prometheus.wait_for_scrape(prometheus.job)
    wait_for(lambda: _counter_value(prometheus) == 10, timeout=30, message="counter never 10")


def test_no_thread_leaks_from_standin(kube_api: Any, namespace: str) -> None:
    before = {t.name for t in threading.enumerate()}
    with ProbeKubeletStandIn(api_client=kube_api, namespace=namespace) as standin:
        wait_for(standin.ready.is_set, timeout=30)
    wait_for(
        lambda: {t.name for t in threading.enumerate()} <= before,
        timeout=10,
        message="stand-in threads outlived stop()",
    )


def test_control_plane_retries_a_port_taken_meanwhile(monkeypatch: pytest.MonkeyPatch) -> None:
    import flagops_devtools.testing.controlplane as controlplane_module

    # Another process grabs the port between "free" and bind: the race envtest has too.
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(
            controlplane_module, "free_port", lambda: next(ports, None) or free_port()
        )
        with ControlPlane(controller_manager=False) as plane:
            assert f":{taken}" not in plane.etcd_url
            assert plane.kubectl("get", "--raw=/readyz").stdout == "ok"
            assert "address already in use" in plane.logs["etcd"].read_text()


def test_control_plane_files_are_private(control_plane: ControlPlane) -> None:
    assert control_plane.kubeconfig.stat().st_mode & 0o077 == 0
    assert Path(control_plane.kubeconfig).read_text().count("client-key-data") == 1
