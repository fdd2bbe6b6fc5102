"""The probe Job manifest, its name, reading results back, and the cadence."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flagops.api.rollout import HealthProbeSpec, ProbeResult, SecretRef
from flagops.rollouts.probe_job import (
    CREDENTIALS_ENV,
    CREDENTIALS_MOUNT,
    PROBE_LABEL,
    ROLLOUT_LABEL,
    ProbeJobSettings,
    build_probe_job,
    label_value,
    next_probe_due,
    probe_is_due,
    probe_job_name,
    probe_overdue,
    probe_result_from_job,
)

UID = "3f0c9a1e-5b7d-4c2a-9e8f-0123456789ab"
NOW = datetime(2026, 5, 1, 10, 0, tzinfo=UTC)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def job(**probe: Any) -> dict[str, Any]:
    spec = HealthProbeSpec.model_validate(
        {"integration": "calendar_sync", "secretRef": {"name": "calendar-creds"}, **probe}
    )
    return build_probe_job(
        rollout_name="calendar-sync",
        rollout_uid=UID,
        namespace="portal",
        sequence=7,
        probe=spec,
        image="ghcr.io/flagops/flagops:0.1.0",
        settings=ProbeJobSettings(extra_env={"FLAGOPS_CALENDAR_API_ENDPOINT": "http://cal"}),
    )


def container(manifest: dict[str, Any]) -> dict[str, Any]:
    containers = manifest["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def env(manifest: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(manifest)["env"]}


def test_job_shape() -> None:
    manifest = job(timeout="45s")
    assert manifest["apiVersion"] == "batch/v1"
    assert manifest["kind"] == "Job"
    meta = manifest["metadata"]
    assert meta["name"] == "flagops-probe-3f0c9a1e-7"
    assert meta["namespace"] == "portal"
    assert meta["labels"][ROLLOUT_LABEL] == "calendar-sync"
    assert meta["labels"][PROBE_LABEL] == "calendar_sync"
    assert meta["ownerReferences"] == [
        {
            "apiVersion": "flagops.dev/v1alpha1",
            "kind": "Rollout",
            "name": "calendar-sync",
            "uid": UID,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]
    spec = manifest["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 45
    assert spec["ttlSecondsAfterFinished"] == 600
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"] == meta["labels"]
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    c = container(manifest)
    assert c["command"] == ["flagops", "probe", "calendar_sync"]
    assert c["image"] == "ghcr.io/flagops/flagops:0.1.0"
    assert c["terminationMessagePath"] == "/dev/termination-log"
    assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert c["resources"]["limits"] == {"cpu": "500m", "memory": "256Mi"}


def test_restricted_security_context_at_pod_and_container() -> None:
    manifest = job()
    pod = manifest["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert pod["runAsUser"] == 65532
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    c = container(manifest)["securityContext"]
    assert c == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_credentials_mounted_read_only_and_never_in_env() -> None:
    manifest = job()
    c = container(manifest)
    assert {"name": "credentials", "mountPath": CREDENTIALS_MOUNT, "readOnly": True} in c[
        "volumeMounts"
    ]
    volumes = {v["name"]: v for v in manifest["spec"]["template"]["spec"]["volumes"]}
    assert volumes["credentials"]["secret"]["secretName"] == "calendar-creds"
    assert env(manifest)[CREDENTIALS_ENV] == CREDENTIALS_MOUNT
    # The operator never reads Secrets: nothing references a Secret's data.
    assert "secretKeyRef" not in json.dumps(manifest)
    assert "envFrom" not in c


def test_probe_env_matches_flagops_probe() -> None:
    from flagops.cli import probe as probe_cli

    values = env(job(timeout="60s"))
    assert probe_cli.CREDENTIALS_ENV in values
    assert values[probe_cli.CREDENTIALS_ENV] == probe_cli.DEFAULT_CREDENTIALS_PATH
    assert values[probe_cli.TERMINATION_LOG_ENV] == "/dev/termination-log"
    # The probe gives up before the Job deadline, so its result is still written.
    assert float(values[probe_cli.TIMEOUT_ENV]) == 48
    assert values["FLAGOPS_CALENDAR_API_ENDPOINT"] == "http://cal"


def test_writable_tmp_because_root_is_read_only() -> None:
    manifest = job()
    mounts = {m["mountPath"] for m in container(manifest)["volumeMounts"]}
    assert "/tmp" in mounts
    assert env(manifest)["HOME"] == "/tmp"


def test_without_secret_no_credentials() -> None:
    spec = HealthProbeSpec.model_validate({"integration": "calendar_sync"})
    manifest = build_probe_job(
        rollout_name="r",
        rollout_uid=UID,
        namespace="n",
        sequence=0,
        probe=spec,
        image="img",
    )
    assert CREDENTIALS_ENV not in env(manifest)
    assert all(v["name"] != "credentials" for v in manifest["spec"]["template"]["spec"]["volumes"])


def test_probe_image_and_flag_integration_defaults() -> None:
    spec = HealthProbeSpec(image="custom:1", secret_ref=SecretRef(name="s"))
    manifest = build_probe_job(
        rollout_name="r",
        rollout_uid=UID,
        namespace="n",
        sequence=1,
        probe=spec,
        image="default:1",
        default_integration="push_notifications",
    )
    assert container(manifest)["image"] == "custom:1"
    assert container(manifest)["command"][-1] == "push_notifications"
    with pytest.raises(ValueError, match="integration"):
        build_probe_job(
            rollout_name="r",
            rollout_uid=UID,
            namespace="n",
            sequence=1,
            probe=HealthProbeSpec(),
            image="i",
        )


def test_sub_second_timeout_rounds_up() -> None:
    assert job(timeout="1500ms", every="5s")["spec"]["activeDeadlineSeconds"] == 2


@given(st.uuids(), st.integers(min_value=0, max_value=10**39))
def test_name_is_deterministic_dns_label(uid: Any, sequence: int) -> None:
    name = probe_job_name(str(uid), sequence)
    assert name == probe_job_name(str(uid), sequence)
    assert len(name) <= 63
    assert DNS_LABEL.fullmatch(name)
    assert name.startswith(f"flagops-probe-{str(uid)[:8]}-")


def test_name_changes_with_sequence_and_uid() -> None:
    assert probe_job_name(UID, 1) != probe_job_name(UID, 2)
    assert probe_job_name(UID, 1) != probe_job_name("aaaaaaaa-0000-0000-0000-000000000000", 1)
    with pytest.raises(ValueError, match="not a Kubernetes uid"):
        probe_job_name("not a uid!", 1)
    with pytest.raises(ValueError, match="longer than 63"):
        probe_job_name(UID, 10**40)


@pytest.mark.parametrize(
    "text", ["calendar-sync", "a" * 63, "a" * 200, "x.y_z", "-bad-", "with space", "a" * 62 + "-"]
)
def test_label_value_always_valid(text: str) -> None:
    value = label_value(text)
    assert len(value) <= 63
    assert re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", value)
    if len(text) <= 63 and re.fullmatch(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?", text):
        assert value == text


# --- results -------------------------------------------------------------


def finished_job(
    kind: str | None, reason: str = "", at: str = "2026-05-01T10:01:00Z"
) -> dict[str, Any]:
    conditions = []
    if kind:
        conditions = [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": kind, "status": "True", "reason": reason, "lastTransitionTime": at},
        ]
    return {
        "metadata": {"name": "flagops-probe-3f0c9a1e-7"},
        "spec": {"activeDeadlineSeconds": 60},
        "status": {"conditions": conditions},
    }


def pod(message: str | None, created: str = "2026-05-01T10:00:00Z") -> dict[str, Any]:
    state: dict[str, Any] = {"running": {}}
    if message is not None:
        state = {"terminated": {"exitCode": 0, "message": message}}
    return {
        "metadata": {"creationTimestamp": created},
        "status": {"containerStatuses": [{"name": "probe", "state": state}]},
    }


PROBE_JSON = json.dumps(
    {
        "integration": "calendar_sync",
        "healthy": True,
        "status": "HEALTHY",
        "message": "calendar list ok",
        "latencyMs": 12.5,
        "checkedAt": "2026-05-01T10:00:59Z",
    }
)


def test_running_job_has_no_result() -> None:
    assert probe_result_from_job(finished_job(None), [pod(None)]) is None
    interim = finished_job(None)
    interim["status"]["conditions"] = [{"type": "FailureTarget", "status": "True"}]
    assert probe_result_from_job(interim, []) is None


def test_complete_job_with_probe_json() -> None:
    result = probe_result_from_job(finished_job("Complete"), [pod(PROBE_JSON)])
    assert result is not None
    assert result.succeeded
    assert result.job == "flagops-probe-3f0c9a1e-7"
    assert result.message == "HEALTHY: calendar list ok"
    assert result.details["latencyMs"] == 12.5
    assert result.finished_at == datetime(2026, 5, 1, 10, 1, tzinfo=UTC)
    record = result.to_record(NOW)
    assert record.result is ProbeResult.SUCCEEDED
    assert record.time == result.finished_at


def test_failed_job_reads_newest_pod() -> None:
    old = pod(json.dumps({"healthy": True, "status": "HEALTHY", "message": "old"}))
    new = pod(
        "Traceback...\n" + json.dumps({"healthy": False, "status": "ERROR", "message": "401"}),
        created="2026-05-01T10:00:30Z",
    )
    result = probe_result_from_job(finished_job("Failed", "BackoffLimitExceeded"), [new, old])
    assert result is not None
    assert not result.succeeded
    assert result.message == "ERROR: 401"
    assert result.to_record(NOW).result is ProbeResult.FAILED


def test_deadline_exceeded_without_output() -> None:
    result = probe_result_from_job(finished_job("Failed", "DeadlineExceeded"), [])
    assert result is not None
    assert not result.succeeded
    assert result.message == "probe timed out after 60s (DeadlineExceeded)"


def test_log_fallback_is_shortened() -> None:
    result = probe_result_from_job(
        finished_job("Failed", "BackoffLimitExceeded"), [pod("x" * 5000)]
    )
    assert result is not None
    assert len(result.message) <= 512
    assert result.details == {}


def test_completion_time_used_without_transition_time() -> None:
    manifest = finished_job("Complete")
    del manifest["status"]["conditions"][1]["lastTransitionTime"]
    manifest["status"]["completionTime"] = "2026-05-01T10:02:00Z"
    result = probe_result_from_job(manifest, [])
    assert result is not None
    assert result.finished_at == datetime(2026, 5, 1, 10, 2, tzinfo=UTC)
    assert result.to_record(NOW).message


# --- cadence -------------------------------------------------------------

EVERY = timedelta(minutes=5)


def test_first_probe_due_at_once() -> None:
    assert next_probe_due(every=EVERY, last_started_at=None, active_job=None, now=NOW) == NOW
    assert probe_is_due(every=EVERY, last_started_at=None, active_job=None, now=NOW)


def test_never_two_at_once() -> None:
    assert next_probe_due(every=EVERY, last_started_at=None, active_job="j", now=NOW) is None
    assert not probe_is_due(
        every=EVERY, last_started_at=NOW - timedelta(hours=1), active_job="j", now=NOW
    )


def test_spaced_from_previous_start() -> None:
    started = NOW - timedelta(minutes=2)
    assert next_probe_due(every=EVERY, last_started_at=started, active_job=None, now=NOW) == (
        started + EVERY
    )
    assert not probe_is_due(every=EVERY, last_started_at=started, active_job=None, now=NOW)
    assert probe_is_due(every=EVERY, last_started_at=started, active_job=None, now=started + EVERY)


def test_overdue() -> None:
    grace = timedelta(seconds=30)
    timeout = timedelta(seconds=60)
    assert not probe_overdue(
        started_at=NOW, timeout=timeout, now=NOW + timeout + grace, grace=grace
    )
    assert probe_overdue(
        started_at=NOW,
        timeout=timeout,
        now=NOW + timeout + grace + timedelta(seconds=1),
        grace=grace,
    )
    assert not probe_overdue(started_at=None, timeout=timeout, now=NOW, grace=grace)
