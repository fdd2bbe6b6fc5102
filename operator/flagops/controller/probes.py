"""Probe Jobs of one Rollout round: read the running Job's result, start the next when due.

Idempotent across restarts: a Job's name carries the Rollout and the sequence
number recorded in status, so a round repeated after a kill that came between
the Job's creation and the status write finds the Job (409) instead of making
a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from flagops.api.rollout import RolloutSpec, RolloutStatus
from flagops.api.stages import Stage
from flagops.controller import metrics
from flagops.controller.kube import Kube
from flagops.controller.publisher import FlagRecord
from flagops.controller.settings import Settings
from flagops.rollouts import probe_job
from flagops.rollouts.decide import Event, EventType, ProbeOutcome
from flagops.rollouts.state import probe_outcome, record_probe

logger = logging.getLogger(__name__)

# A probe Job whose result has not come this long after its deadline is forgotten.
PROBE_GRACE = timedelta(seconds=30)
# While a probe runs, look at it at least this often even if no Job event wakes us.
PROBE_POLL = timedelta(seconds=5)


class ProbeRunner:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings

    async def step(
        self,
        namespace: str,
        obj: Mapping[str, Any],
        spec: RolloutSpec,
        status: RolloutStatus,
        stage: Stage | None,
        now: datetime,
        flag: FlagRecord | None,
        events: list[Event],
        *,
        start: bool = True,
    ) -> tuple[RolloutStatus, ProbeOutcome]:
        """Read the running probe Job's result; start the next when due (and `start`: a
        Degraded Rollout has no integration to probe for sure, nor a flag of its own)."""
        probe = spec.health_probe
        if probe is None:
            return status, ProbeOutcome.NONE
        integration = probe.integration or (flag.integration if flag else None) or ""
        if status.active_probe_job:
            job = await self._kube.read_job(namespace, status.active_probe_job)
            result = None
            if job is not None:
                pods = await self._kube.job_pods(namespace, status.active_probe_job)
                result = probe_job.probe_result_from_job(job, pods)
            if result is not None:
                status = record_probe(status, result.to_record(now), stage)
                outcome = "success" if result.succeeded else "failure"
                metrics.PROBES.labels(integration, outcome).inc()
                if not result.succeeded:
                    events.append(
                        Event(
                            EventType.WARNING,
                            "ProbeFailed",
                            f"probe {result.job}: {result.message}",
                        )
                    )
            elif job is None or probe_job.probe_overdue(
                started_at=status.active_probe_started_at,
                timeout=probe.timeout_delta,
                now=now,
                grace=PROBE_GRACE,
            ):
                logger.warning(
                    "probe job %s vanished or overran; starting anew", status.active_probe_job
                )
                status = status.model_copy(
                    update={"active_probe_job": None, "active_probe_started_at": None}
                )
        if start and probe_job.probe_is_due(
            every=probe.every_delta,
            last_started_at=status.active_probe_started_at
            or (status.last_probe.time if status.last_probe else None),
            active_job=status.active_probe_job,
            now=now,
        ):
            sequence = status.probe_sequence + 1
            body = probe_job.build_probe_job(
                rollout_name=obj["metadata"]["name"],
                rollout_uid=obj["metadata"]["uid"],
                namespace=namespace,
                sequence=sequence,
                probe=probe,
                image=probe.image or self._settings.probe_image,
                default_integration=flag.integration if flag else None,
                settings=probe_job.ProbeJobSettings(extra_env=dict(self._settings.probe_env)),
            )
            await self._kube.create_job(namespace, body)
            status = status.model_copy(
                update={
                    "probe_sequence": sequence,
                    "active_probe_job": body["metadata"]["name"],
                    "active_probe_started_at": now,
                }
            )
        return status, probe_outcome(status)
