"""Health probe Jobs: made by the operator, run by the kubelet stand-in, read back as verdicts."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from rollout_controller_env import EnvFactory, RolloutEnv

from flagops.rollouts.probe_job import probe_job_name
from flagops_devtools.testing.kubelet_standin import (
    CommandResult,
    ProbeInvocation,
    ProbeKubeletStandIn,
)
from flagops_devtools.testing.wait import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

PROBE_SECRET = "calendar-probe"
# The operator passes non-secret probe settings to every Job (--probe-env).
MOCK_MODE = ["--probe-env", "FLAGOPS_PROBE_MOCK_MODE=true"]


def create_probe_secret(env: RolloutEnv) -> None:
    env.core.create_namespaced_secret(
        env.namespace,
        client.V1Secret(
            metadata=client.V1ObjectMeta(name=PROBE_SECRET),
            string_data={"credentials.json": json.dumps({"type": "service_account"})},
        ),
    )


def probe_spec(every: str = "5s") -> dict[str, Any]:
    return {
        "integration": "calendar_sync",
        "secretRef": {"name": PROBE_SECRET},
        "timeout": "5s",
        "every": every,
    }


def failing(invocation: ProbeInvocation) -> CommandResult:
    result = {"healthy": False, "status": "ERROR", "message": "calendar API answered 503"}
    return CommandResult(exit_code=1, message=json.dumps(result))


def probe_metric(env: RolloutEnv, result: str) -> float:
    for line in env.operator.metrics().splitlines():
        if line.startswith("flagops_probe_total{") and f'result="{result}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def finished_at(job: Any) -> Any:
    for condition in job.status.conditions or []:
        if condition.type in ("Complete", "Failed") and condition.status == "True":
            return condition.last_transition_time
    return None


def test_probe_jobs(make_env: EnvFactory, kubelet_standin: ProbeKubeletStandIn) -> None:
    env = make_env(extra_args=MOCK_MODE)
    create_probe_secret(env)
    env.create_flag(enabled=False)
    rollout = env.create_rollout(stageDuration="10m", healthProbe=probe_spec())
    uid = rollout["metadata"]["uid"]

    # DISABLED -> INTERNAL waits for a passing probe.
    status = env.wait_status(lambda s: s.get("stage") == "INTERNAL", timeout=60)
    assert status["lastProbe"]["result"] == "Succeeded"
    assert "CONNECTED" in status["lastProbe"]["message"]
    first_job = status["lastProbe"]["job"]
    assert first_job == probe_job_name(uid, 1)
    env.wait_events("StageAdvanced")
    assert env.stage_steps() == [("DISABLED", "INTERNAL")]

    # The Job as DESIGN.md describes it.
    job: Any = client.BatchV1Api(env.custom.api_client).read_namespaced_job(
        first_job, env.namespace
    )
    owners = job.metadata.owner_references
    assert [(o.kind, o.name, o.uid) for o in owners] == [("Rollout", "calendar-sync", uid)]
    assert job.metadata.labels["flagops.dev/rollout"] == "calendar-sync"
    assert job.metadata.labels["flagops.dev/probe"] == "calendar_sync"
    assert (job.spec.backoff_limit, job.spec.active_deadline_seconds) == (0, 5)
    assert job.spec.ttl_seconds_after_finished is not None
    pod = job.spec.template.spec
    assert pod.restart_policy == "Never"
    container = pod.containers[0]
    assert container.command == ["flagops", "probe", "calendar_sync"]
    context = container.security_context
    assert context.run_as_non_root and context.read_only_root_filesystem
    assert context.allow_privilege_escalation is False
    assert context.capabilities.drop == ["ALL"]
    assert context.seccomp_profile.type == "RuntimeDefault"
    env_vars = {e.name: e.value for e in container.env}
    assert env_vars["FLAGOPS_PROBE_MOCK_MODE"] == "true"
    assert [v.secret.secret_name for v in pod.volumes if v.secret] == [PROBE_SECRET]
    assert_admitted_under_restricted_pod_security(env, job.spec.template)

    # More probes follow, one at a time, each recorded.
    env.wait_status(lambda s: (s.get("lastProbe") or {}).get("job") == probe_job_name(uid, 2))
    probes = [h for h in env.status()["healthHistory"] if h["source"] == "Probe"]
    assert [h["job"] for h in probes[:2]] == [probe_job_name(uid, n) for n in (2, 1)]
    assert {h["verdict"] for h in probes} == {"Pass"}
    assert_one_at_a_time(env)
    assert wait_for(lambda: probe_metric(env, "success") >= 2, timeout=10)

    # A failing probe is a Fail verdict: the Rollout pauses at its stage.
    kubelet_standin.command_override = failing
    status = env.wait_status(lambda s: s.get("phase") == "Paused", timeout=30)
    assert status["stage"] == "INTERNAL"
    assert status["pauseReason"] == "AnalysisFailed"
    assert status["lastProbe"]["result"] == "Failed"
    assert "503" in status["lastProbe"]["message"]
    assert status["lastAnalysis"]["verdict"] == "Fail"
    assert "probe failed" in status["lastAnalysis"]["message"]
    failed = env.wait_events("ProbeFailed")[0]
    assert failed.type == "Warning"
    assert wait_for(lambda: probe_metric(env, "failure") >= 1, timeout=10)
    assert_one_at_a_time(env)


def sequence(job: Any) -> int:
    return int(job.metadata.labels["flagops.dev/probe-sequence"])


def assert_one_at_a_time(env: RolloutEnv) -> None:
    """Each Job started after the one before it finished; names are unique per sequence."""
    jobs: list[Any] = sorted(env.jobs(), key=sequence)
    sequences = [sequence(j) for j in jobs]
    assert sequences == list(range(1, len(jobs) + 1))
    for before, after in itertools.pairwise(jobs):
        done = finished_at(before)
        assert done is not None, f"{after.metadata.name} started while {before.metadata.name} ran"
        assert after.metadata.creation_timestamp >= done


def assert_admitted_under_restricted_pod_security(env: RolloutEnv, template: Any) -> None:
    """A server-side dry-run create of the Job's pod in a restricted namespace."""
    restricted = env.control_plane.create_namespace(
        labels={"pod-security.kubernetes.io/enforce": "restricted"}
    )
    try:
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(generate_name="probe-", labels=template.metadata.labels),
            spec=template.spec,
        )
        env.core.create_namespaced_pod(restricted, pod, dry_run="All")
        # The namespace does enforce: a pod without the restricted context is refused.
        plain = client.V1Pod(
            metadata=client.V1ObjectMeta(generate_name="plain-"),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]),
        )
        with pytest.raises(ApiException) as refused:
            env.core.create_namespaced_pod(restricted, plain, dry_run="All")
        assert refused.value.status == 403
        assert "restricted" in str(refused.value.body)
    finally:
        env.control_plane.delete_namespace(restricted)


def test_next_probe_starts_on_time_between_analyses(
    make_env: EnvFactory, kubelet_standin: ProbeKubeletStandIn
) -> None:
    """Probes are spaced by healthProbe.every even when analyses are far apart."""
    env = make_env(extra_args=MOCK_MODE)
    create_probe_secret(env)
    env.create_flag(enabled=False)
    rollout = env.create_rollout(
        stageDuration="10m",
        analysis={"interval": "60s"},
        healthProbe={**probe_spec(every="3s"), "timeout": "3s"},
    )
    uid = rollout["metadata"]["uid"]
    env.wait_status(lambda s: (s.get("lastProbe") or {}).get("job") == probe_job_name(uid, 1))
    status = env.wait_status(
        lambda s: (s.get("lastProbe") or {}).get("job") == probe_job_name(uid, 2), timeout=20
    )
    assert status["stage"] == "INTERNAL"
