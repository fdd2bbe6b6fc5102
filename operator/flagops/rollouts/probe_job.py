"""Health probe Jobs: the manifest, reading the result back, and when the next is due.

All pure: the controller creates the Job and lists its Pods. Manifests are
plain dicts in the API's camelCase (what kopf bodies and
`ApiClient.sanitize_for_serialization` give), so no client model is needed.

The probe side (`flagops probe`, flagops/cli/probe.py) reads the environment
set here; docs/integrations.md "Probe Job environment" lists it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from flagops.api.common import parse_timestamp
from flagops.api.resources import ROLLOUTS
from flagops.api.rollout import HealthProbeSpec, ProbeRecord, ProbeResult

ROLLOUT_LABEL = "flagops.dev/rollout"
PROBE_LABEL = "flagops.dev/probe"
SEQUENCE_LABEL = "flagops.dev/probe-sequence"
MANAGED_BY = {"app.kubernetes.io/managed-by": "flagops", "app.kubernetes.io/component": "probe"}

CONTAINER_NAME = "probe"
# Where `flagops probe` looks for the key by default, and the variables it reads.
CREDENTIALS_MOUNT = "/var/run/secrets/flagops/credentials"
CREDENTIALS_ENV = "FLAGOPS_PROBE_CREDENTIALS_FILE"
TIMEOUT_ENV = "FLAGOPS_PROBE_TIMEOUT"
TERMINATION_LOG_ENV = "FLAGOPS_TERMINATION_LOG"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
TMP_MOUNT = "/tmp"  # noqa: S108 - an emptyDir: the root filesystem is read-only
NONROOT_UID = 65532
NAME_LIMIT = 63
MESSAGE_LIMIT = 512

_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class ProbeJobSettings:
    """Operator-wide knobs of probe Jobs."""

    ttl_seconds_after_finished: int = 600
    cpu_request: str = "10m"
    memory_request: str = "64Mi"
    cpu_limit: str = "500m"
    memory_limit: str = "256Mi"
    image_pull_policy: str = "IfNotPresent"
    # Non-secret settings passed to every probe (e.g. FLAGOPS_CALENDAR_API_ENDPOINT).
    extra_env: Mapping[str, str] = field(default_factory=dict)


def probe_job_name(rollout_uid: str, sequence: int) -> str:
    """`flagops-probe-<first 8 hex of the uid>-<sequence>`: stable across restarts."""
    if sequence < 0:
        raise ValueError("sequence must be >= 0")
    short = rollout_uid.replace("-", "").lower()[:8]
    if not re.fullmatch(r"[0-9a-z]{1,8}", short):
        raise ValueError(f"rollout uid {rollout_uid!r} is not a Kubernetes uid")
    name = f"flagops-probe-{short}-{sequence}"
    if len(name) > NAME_LIMIT:
        raise ValueError(f"probe Job name {name!r} longer than {NAME_LIMIT}")
    return name


def label_value(text: str) -> str:
    """`text` if it is a valid label value, else a readable prefix plus a hash."""
    if len(text) <= NAME_LIMIT and _LABEL_VALUE_RE.fullmatch(text):
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    prefix = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[: NAME_LIMIT - 11].strip("-_.")
    return f"{prefix}-{digest}" if prefix else digest


def probe_timeout_seconds(timeout: timedelta) -> int:
    return max(1, math.ceil(timeout.total_seconds()))


def _probe_time_limit(deadline_seconds: int) -> str:
    # The probe stops itself before the Job deadline kills it, so it still
    # writes its result; 80% leaves time to start Python and write the message.
    return f"{max(0.5, deadline_seconds * 0.8):g}"


def build_probe_job(
    *,
    rollout_name: str,
    rollout_uid: str,
    namespace: str,
    sequence: int,
    probe: HealthProbeSpec,
    image: str,
    settings: ProbeJobSettings | None = None,
    default_integration: str | None = None,
) -> dict[str, Any]:
    """The batch/v1 Job running `flagops probe <integration>` for one Rollout.

    `image` is the operator's probe image (used unless the probe names one);
    `default_integration` is the flag's spec.integration.
    """
    settings = settings or ProbeJobSettings()
    integration = probe.integration or default_integration
    if not integration:
        raise ValueError("healthProbe.integration is unset and the flag names no integration")
    deadline = probe_timeout_seconds(probe.timeout_delta)
    labels = {
        **MANAGED_BY,
        ROLLOUT_LABEL: label_value(rollout_name),
        PROBE_LABEL: label_value(integration),
        SEQUENCE_LABEL: str(sequence),
    }
    env: list[dict[str, Any]] = [
        {"name": name, "value": value} for name, value in sorted(settings.extra_env.items())
    ]
    env += [
        {"name": TIMEOUT_ENV, "value": _probe_time_limit(deadline)},
        {"name": TERMINATION_LOG_ENV, "value": TERMINATION_MESSAGE_PATH},
        {"name": "HOME", "value": TMP_MOUNT},
    ]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": TMP_MOUNT}]
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}]
    if probe.secret_ref is not None:
        env.append({"name": CREDENTIALS_ENV, "value": CREDENTIALS_MOUNT})
        mounts.append({"name": "credentials", "mountPath": CREDENTIALS_MOUNT, "readOnly": True})
        volumes.append(
            {
                "name": "credentials",
                # 0440 with fsGroup: readable by the probe's group only.
                "secret": {"secretName": probe.secret_ref.name, "defaultMode": 0o440},
            }
        )
    seccomp = {"type": "RuntimeDefault"}
    container = {
        "name": CONTAINER_NAME,
        "image": probe.image or image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": ["flagops", "probe", integration],
        "env": env,
        "volumeMounts": mounts,
        "resources": {
            "requests": {"cpu": settings.cpu_request, "memory": settings.memory_request},
            "limits": {"cpu": settings.cpu_limit, "memory": settings.memory_limit},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NONROOT_UID,
            "runAsGroup": NONROOT_UID,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": seccomp,
        },
        "terminationMessagePath": TERMINATION_MESSAGE_PATH,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": probe_job_name(rollout_uid, sequence),
            "namespace": namespace,
            "labels": labels,
            "annotations": {"flagops.dev/rollout-name": rollout_name},
            "ownerReferences": [
                {
                    "apiVersion": ROLLOUTS.api_version,
                    "kind": "Rollout",
                    "name": rollout_name,
                    "uid": rollout_uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": NONROOT_UID,
                        "runAsGroup": NONROOT_UID,
                        "fsGroup": NONROOT_UID,
                        "seccompProfile": seccomp,
                    },
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


@dataclass(frozen=True)
class ProbeJobResult:
    """A finished probe Job, as the operator records it."""

    job: str
    succeeded: bool
    message: str
    finished_at: datetime | None
    details: Mapping[str, Any] = field(default_factory=dict)  # the probe's JSON, if readable

    def to_record(self, fallback_time: datetime) -> ProbeRecord:
        return ProbeRecord(
            job=self.job,
            time=self.finished_at or fallback_time,
            result=ProbeResult.SUCCEEDED if self.succeeded else ProbeResult.FAILED,
            message=self.message or None,
        )


def _terminal_condition(job: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition  # type: ignore[no-any-return]
    return None


def _terminated_state(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") != CONTAINER_NAME:
            continue
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return terminated  # type: ignore[no-any-return]
    return None


def _probe_output(pods: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any] | None, str]:
    """The newest terminated pod's termination message, parsed when it is the probe's JSON."""
    terminated = [
        (str((p.get("metadata") or {}).get("creationTimestamp") or ""), state)
        for p in pods
        if (state := _terminated_state(p)) is not None
    ]
    if not terminated:
        return None, ""
    _, state = max(terminated, key=lambda item: item[0])
    raw = str(state.get("message") or "").strip()
    # The message is the probe's last JSON line (or, on a crash, the log tail).
    for line in reversed(raw.splitlines()):
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed, raw
    return None, raw


def _shorten(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def probe_result_from_job(
    job: Mapping[str, Any], pods: Sequence[Mapping[str, Any]]
) -> ProbeJobResult | None:
    """The outcome of a finished Job, or None while it runs.

    Success is the Job's `Complete` condition (DESIGN); the probe's JSON in the
    termination message gives the message and details.
    """
    condition = _terminal_condition(job)
    if condition is None:
        return None
    name = str((job.get("metadata") or {}).get("name") or "")
    succeeded = condition.get("type") == "Complete"
    finished_at = parse_timestamp(condition.get("lastTransitionTime")) or parse_timestamp(
        (job.get("status") or {}).get("completionTime")
    )
    details, raw = _probe_output(pods)
    if details is not None:
        status = str(details.get("status") or ("HEALTHY" if succeeded else "UNHEALTHY"))
        message = _shorten(f"{status}: {details.get('message') or ''}".rstrip(": "))
    elif not succeeded and condition.get("reason") == "DeadlineExceeded":
        deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
        message = f"probe timed out after {deadline}s (DeadlineExceeded)"
    elif raw:
        message = _shorten(raw)
    else:
        reason = condition.get("reason") or ("Completed" if succeeded else "Failed")
        message = f"{reason}: {condition.get('message') or 'no result from the probe'}"
    return ProbeJobResult(
        job=name,
        succeeded=succeeded,
        message=message,
        finished_at=finished_at,
        details=details or {},
    )


def next_probe_due(
    *,
    every: timedelta,
    last_started_at: datetime | None,
    active_job: str | None,
    now: datetime,
) -> datetime | None:
    """When the next probe Job should start; None while one runs (at most one at a time).

    Probes are spaced from the start of the previous one, so a slow probe
    does not stretch the cadence; the first is due at once.
    """
    if active_job:
        return None
    if last_started_at is None:
        return now
    return max(now, last_started_at + every)


def probe_is_due(
    *, every: timedelta, last_started_at: datetime | None, active_job: str | None, now: datetime
) -> bool:
    due = next_probe_due(
        every=every, last_started_at=last_started_at, active_job=active_job, now=now
    )
    return due is not None and due <= now


def probe_overdue(
    *, started_at: datetime | None, timeout: timedelta, now: datetime, grace: timedelta
) -> bool:
    """A running Job past its deadline plus `grace`: its result is not coming (e.g. the
    Job was deleted), so the operator may forget it and start the next."""
    return started_at is not None and now > started_at + timeout + grace
