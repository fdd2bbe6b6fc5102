"""A ConfigMap write the apiserver refuses (a ResourceQuota) is retried with back-off, logged
once, reported on the flags, and published as soon as the refusal ends (real apiserver)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families
from test_publish import condition, create, feature_flag, get_flag, published

from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

QUOTA = "no-configmaps"


def failures(operator: OperatorProcess, namespace: str) -> float:
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if (
                sample.name == "flagops_publish_failures_total"
                and sample.labels.get("namespace") == namespace
            ):
                return float(sample.value)
    return 0.0


def test_refused_write_backs_off_says_why_and_recovers(
    operator_factory: Any,
    namespace: str,
    core: client.CoreV1Api,
    custom: client.CustomObjectsApi,
) -> None:
    quota: Any = {"metadata": {"name": QUOTA}, "spec": {"hard": {"count/configmaps": "0"}}}
    core.create_namespaced_resource_quota(namespace, quota)
    # The test control plane runs no quota controller: the test writes the count it would
    # (nothing used), and the apiserver's ResourceQuota admission refuses every create.
    core.patch_namespaced_resource_quota_status(
        QUOTA,
        namespace,
        {"status": {"hard": {"count/configmaps": "0"}, "used": {"count/configmaps": "0"}}},
    )
    operator: OperatorProcess = operator_factory([namespace])
    create(custom, namespace, feature_flag("kill-switch", enabled=True))

    def says_why() -> dict[str, Any] | None:
        cond = condition(get_flag(custom, namespace, "kill-switch"), "Published")
        return cond if cond and cond["reason"] == "PublishFailed" else None

    try:
        cond = wait_for(says_why, timeout=30, message="flag never said why it is not published")
    except TimeoutError as exc:
        flag = get_flag(custom, namespace, "kill-switch")
        raise AssertionError(f"{flag.get('status')}\n{operator.log()[-4000:]}") from exc
    assert cond["status"] == "False" and "quota" in cond["message"]
    assert published(core, namespace) is None

    # 0.5 s, 1 s, 2 s apart: several attempts, not a tight loop, one log line.
    wait_for(lambda: failures(operator, namespace) >= 4, timeout=30)
    log = operator.log()
    assert log.count(f"publishing {namespace} failed") == 1, log
    print(next(line for line in log.splitlines() if f"publishing {namespace} failed" in line))
    assert "Traceback" not in log

    core.delete_namespaced_resource_quota(QUOTA, namespace)
    wait_for(
        lambda: "kill-switch" in (published(core, namespace) or {}),
        timeout=45,
        message="not published after the quota went",
    )
    wait_for(
        lambda: (
            (condition(get_flag(custom, namespace, "kill-switch"), "Published") or {}).get("status")
            == "True"
        ),
        timeout=30,
    )
    attempts = failures(operator, namespace)
    print(f"refused writes before the quota went: {attempts:.0f}")
    assert attempts < 20  # back-off: about 6 attempts in the first 30 s, not hundreds
    wait_for(lambda: f"publishing {namespace} recovered" in operator.log(), timeout=10)
