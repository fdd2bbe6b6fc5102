"""Probe Jobs of one Rollout round: read the running Job's result, start the next when due.

What to do is the round plan's (rollouts/plan.py); this module does the
Kubernetes I/O. Idempotent across restarts: a Job's name carries the Rollout
and the sequence number recorded in status, so a round repeated after a kill
that came between the Job's creation and the status write finds the Job (409)
instead of making a second one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flagops.api.rollout import RolloutSpec, RolloutStatus
from flagops.controller import metrics
from flagops.controller.kube import Kube
from flagops.controller.settings import Settings
from flagops.rollouts import probe_job
from flagops.rollouts.model import Event, EventType, ProbeOutcome
from flagops.rollouts.plan import RoundPlan, probe_start_due
from flagops.rollouts.state import probe_outcome, record_probe, state_from_status

logger = logging.getLogger(__name__)


class ProbeRunner:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings

    async def step(
        self,
        obj: Mapping[str, Any],
        spec: RolloutSpec,
        status: RolloutStatus,
        plan: RoundPlan,
        now: datetime,
        flag_integration: str | None,
        events: list[Event],
    ) -> tuple[RolloutStatus, ProbeOutcome]:
        """Read the running probe Job's result; start the next when the plan allows and
        one is due. `flag_integration` is the flag's, the probe's default."""
        probe = spec.health_probe
        if probe is None:
            return status, ProbeOutcome.NONE
        namespace = obj["metadata"]["namespace"]
        if plan.read_probe_job:
            status = await self._read(
                namespace, plan, status, probe.integration or flag_integration or "", events, now
            )
        if plan.start_probes and probe_start_due(spec, status, now):
            sequence = status.probe_sequence + 1
            body = probe_job.build_probe_job(
                rollout_name=obj["metadata"]["name"],
                rollout_uid=obj["metadata"]["uid"],
                namespace=namespace,
                sequence=sequence,
                probe=probe,
                image=probe.image or self._settings.probe_image,
                default_integration=flag_integration,
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

    async def _read(
        self,
        namespace: str,
        plan: RoundPlan,
        status: RolloutStatus,
        integration: str,
        events: list[Event],
        now: datetime,
    ) -> RolloutStatus:
        """Status with the running Job's result recorded, or the Job forgotten when it
        vanished or overran; unchanged while it runs."""
        name = plan.read_probe_job or ""
        job = await self._kube.read_job(namespace, name)
        result = None
        if job is not None:
            pods = await self._kube.job_pods(namespace, name)
            result = probe_job.probe_result_from_job(job, pods)
        if result is not None:
            metrics.PROBES.labels(integration, "success" if result.succeeded else "failure").inc()
            if not result.succeeded:
                events.append(
                    Event(EventType.WARNING, "ProbeFailed", f"probe {result.job}: {result.message}")
                )
            return record_probe(status, result.to_record(now), state_from_status(status).stage)
        if job is None or plan.abandon_unfinished_probe:
            logger.warning("probe job %s vanished or overran; starting anew", name)
            return status.model_copy(
                update={"active_probe_job": None, "active_probe_started_at": None}
            )
        return status
