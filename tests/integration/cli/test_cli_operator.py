"""kubectl-flagops against the real operator (rollout controller) and a real Prometheus."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cli_helpers import create_flag, create_rollout, get_object, run_plugin
from kubernetes import client

from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]


@pytest.fixture
def prometheus_url(prometheus_server: Any) -> str:
    # No traffic: queries parse and answer with no data, so analyses are Inconclusive.
    url: str = prometheus_server([]).url
    return url


def published(core: client.CoreV1Api, namespace: str, key: str) -> dict[str, Any] | None:
    try:
        data = core.read_namespaced_config_map("feature-flags", namespace).data or {}
    except client.ApiException:
        return None
    entry: dict[str, Any] | None = json.loads(data["flags.json"])["flags"].get(key)
    return entry


def test_actions_validate_status_and_complete_with_the_operator(
    kubeconfig: str,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    operator_factory: Any,
    prometheus_url: str,
) -> None:
    create_flag(
        custom, namespace, "calendar-sync",
        key="calendar_sync", integration="calendar_sync", allowedCohorts=["beta"],
    )  # fmt: skip
    create_rollout(
        custom, namespace, "cs", "calendar-sync",
        autoAdvance=False, stageDuration="1s",
        analysis={"interval": "1s", "prometheus": {"address": prometheus_url}},
    )  # fmt: skip
    operator_factory([namespace], prometheus_address=prometheus_url)
    base = ["--kubeconfig", kubeconfig, "-n", namespace]

    result = run_plugin(*base, "validate", "cs")
    assert result.code == 0, result.out + result.err
    cells = [re.split(r"\s{3,}", line) for line in result.out.splitlines()[1:]]
    rows = {cell[1]: cell[0] for cell in cells}
    assert rows == {
        "spec": "OK", "flag exists": "OK", "one rollout per flag": "OK",
        "prometheus reachable": "OK", "error-rate query": "OK", "sample-count query": "OK",
        "probe secret": "SKIP",
    }  # fmt: skip

    def adopted() -> bool:
        status = get_object(custom, namespace, "rollouts", "cs").get("status") or {}
        return status.get("stage") == "DISABLED"

    wait_for(adopted, timeout=60, message="operator did not adopt the flag at DISABLED")

    act = [*base, "--timeout", "30"]
    result = run_plugin(*act[:4], "advance", "cs", *act[4:])
    assert result.code == 0, result.out + result.err
    assert "Succeeded" in result.out
    assert "stage INTERNAL" in result.out

    # No traffic means no Pass: a plain advance is rejected, a forced one goes through.
    result = run_plugin(*base, "advance", "cs")
    assert result.code == 1, result.out + result.err
    assert "Rejected" in result.out
    result = run_plugin(*base, "advance", "cs", "--force", "--reason", "on-call approved")
    assert result.code == 0, result.out + result.err
    assert "stage BETA" in result.out
    entry = wait_for(
        lambda: (e := published(core, namespace, "calendar_sync")) and e["stage"] == "BETA" and e,
        timeout=30,
        message="ConfigMap did not follow the Rollout to BETA",
    )
    assert (entry["enabled"], entry["rolloutPercent"]) == (True, 10)

    result = run_plugin(*base, "pause", "cs", "--reason", "investigating")
    assert result.code == 0, result.out + result.err
    assert "phase Paused" in result.out
    status = run_plugin(*base, "status", "cs").out
    assert "Stage:       BETA (10%)" in status
    assert "Phase:       Paused" in status
    assert "Last action: pause Succeeded" in status
    result = run_plugin(*base, "resume", "cs")
    assert result.code == 0, result.out + result.err
    result = run_plugin(*base, "resume", "cs")
    assert result.code == 1  # not paused any more
    assert "Rejected" in result.out

    result = run_plugin(*base, "check", "cs")
    assert result.code == 0, result.out + result.err

    result = run_plugin(*base, "flags")
    row = next(line for line in result.out.splitlines() if line.startswith("calendar_sync"))
    assert row.split() == ["calendar_sync", "true", "10", "beta,internal", "BETA", "rollout/cs"]

    # complete: the flag's spec takes the stage, the Rollout goes, exposure stays.
    before = published(core, namespace, "calendar_sync")
    assert before is not None
    result = run_plugin(*base, "complete", "cs")
    assert result.code == 0, result.out + result.err
    spec = get_object(custom, namespace, "featureflags", "calendar-sync")["spec"]
    assert (spec["enabled"], spec["rolloutPercent"], spec["allowedCohorts"]) == (
        True, 10, ["beta", "internal"],
    )  # fmt: skip
    after = wait_for(
        lambda: (e := published(core, namespace, "calendar_sync")) and e["stage"] is None and e,
        timeout=30,
        message="ConfigMap did not hand the flag back to its spec",
    )
    for field in ("enabled", "rolloutPercent", "allowedCohorts"):
        assert after[field] == before[field], field


def test_rollback_and_retry_with_the_operator(
    kubeconfig: str,
    namespace: str,
    custom: client.CustomObjectsApi,
    core: client.CoreV1Api,
    operator_factory: Any,
    prometheus_url: str,
) -> None:
    create_flag(
        custom, namespace, "coach", key="ai_coaching_v2", integration="coach",
        enabled=True, rolloutPercent=25,
    )  # fmt: skip
    create_rollout(
        custom, namespace, "coach", "coach", autoAdvance=False,
        analysis={"interval": "1s", "prometheus": {"address": prometheus_url}},
    )  # fmt: skip
    operator_factory([namespace], prometheus_address=prometheus_url)
    base = ["--kubeconfig", kubeconfig, "-n", namespace]
    wait_for(
        lambda: (
            (get_object(custom, namespace, "rollouts", "coach").get("status") or {}).get("stage")
            == "EARLY_ACCESS"
        ),
        timeout=60,
        message="operator did not adopt the flag at EARLY_ACCESS (25%)",
    )
    result = run_plugin(*base, "rollback", "coach", "--reason", "errors")
    assert result.code == 0, result.out + result.err
    assert "stage DISABLED, phase RolledBack" in result.out
    wait_for(
        lambda: (e := published(core, namespace, "ai_coaching_v2")) and e["enabled"] is False,
        timeout=30,
        message="ConfigMap did not turn the flag off after rollback",
    )
    result = run_plugin(*base, "retry", "coach")
    assert result.code == 0, result.out + result.err
    result = run_plugin(*base, "retry", "coach")
    assert result.code == 1
    assert "not rolled back" in result.out
