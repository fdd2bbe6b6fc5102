"""One reconcile round of a Rollout: fetch, plan, do what the plan asks, decide, write.

Argo Rollouts' split: `rollouts.plan` says which I/O the round needs, this
module does it (Kubernetes, probe Jobs, `rollouts.measure` for Prometheus),
`rollouts.judge` turns measurements into a verdict, `rollouts.decide` says what
happens, and this module writes status, Events and metrics. Everything the next round needs
is in `status`, so any replica can take over at any moment.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes.client.exceptions import ApiException

from flagops.api.actions import ACTION_ANNOTATION, Action, parse_action
from flagops.api.common import ConditionStatus, set_condition
from flagops.api.featureflag import rollout_source
from flagops.api.resources import ROLLOUTS
from flagops.api.rollout import (
    Phase,
    Rollout,
    RolloutCondition,
    RolloutSpec,
    RolloutStatus,
    StageTotals,
)
from flagops.api.stages import Stage
from flagops.api.validation import RolloutClaim
from flagops.controller import metrics
from flagops.controller.announcements import Announcer
from flagops.controller.grouped import GroupedQueries
from flagops.controller.kube import Kube
from flagops.controller.probes import ProbeRunner
from flagops.controller.querying import in_query_thread
from flagops.controller.rollout_memory import RolloutMemory
from flagops.controller.rollout_metrics import RolloutGauges
from flagops.controller.scheduler import RETRY_AFTER, RoundScheduler
from flagops.controller.settings import Settings
from flagops.controller.validations import Validations
from flagops.publishing.record import FlagRecord
from flagops.rollouts import measure, totals
from flagops.rollouts.decide import decide
from flagops.rollouts.judge import AnalysisResult, Measurement, judge
from flagops.rollouts.model import (
    DecisionInputs,
    Event,
    EventType,
    FlagSnapshot,
    ProbeOutcome,
)
from flagops.rollouts.plan import (
    FlagFacts,
    RoundFacts,
    RoundPlan,
    next_wake,
    plan,
    wake_after_takeover,
)
from flagops.rollouts.queries import rendered_or_template, template_values
from flagops.rollouts.state import (
    apply_to_status,
    decision_spec,
    publication,
    record_events,
    state_from_status,
)
from flagops.rollouts.visibility import visible, write_reason

# A query that parsed and answered is not asked again for this long (seconds): 10,000
# Rollouts on the default templates validate with a handful of queries.
VALIDATION_MEMORY = 600.0
# Rounds under way at once: a takeover makes every Rollout due together.
ROUND_LIMIT = 64

logger = logging.getLogger(__name__)


def _status_patch(status: RolloutStatus) -> dict[str, Any]:
    # Nulls stay in: in a merge patch they delete what the new status no longer has.
    patch: dict[str, Any] = status.model_dump(mode="json", by_alias=True)
    return patch


def with_totals(status: RolloutStatus, counted: StageTotals | None) -> RolloutStatus:
    """Status with the newest totals of its stage; none once the stage has moved on."""
    totals = counted or status.stage_totals
    if totals is not None and totals.stage is not status.stage:
        totals = None
    if totals == status.stage_totals:
        return status
    return status.model_copy(update={"stage_totals": totals})


class RolloutReconciler:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings
        self._announcer = Announcer(kube)
        self._probes = ProbeRunner(kube, settings)
        self._scheduler = RoundScheduler(self._round, limit=ROUND_LIMIT)
        self._memory = RolloutMemory()
        self._gauges = RolloutGauges()
        self._bad_actions: set[str] = set()
        # kopf's indexes: each flag by (namespace, name), each flag's claims likewise.
        self._flags: Mapping[tuple[str, str], Iterable[FlagRecord]] = {}
        self._claims: Mapping[tuple[str, str], Iterable[RolloutClaim]] = {}
        self._grouped = GroupedQueries(settings.prometheus_timeout)
        self._heartbeat = timedelta(seconds=settings.status_heartbeat)
        self._validations = Validations(VALIDATION_MEMORY)

    def bind(
        self,
        flags: Mapping[tuple[str, str], Iterable[FlagRecord]],
        claims: Mapping[tuple[str, str], Iterable[RolloutClaim]],
    ) -> None:
        self._flags, self._claims = flags, claims

    # --- tracking ------------------------------------------------------------------------

    def track(self, body: Mapping[str, Any]) -> None:
        """A Rollout's watch event (not its deletion): keep what its rounds read, and run a
        round now when the Rollout is new, its spec changed or an action arrived; our own
        status writes coming back only refresh what is kept. A standby keeps, runs nothing."""
        meta = body.get("metadata") or {}
        uid = str(meta.get("uid", ""))
        if meta.get("deletionTimestamp"):
            # As kopf stopped a daemon: a Rollout on its way out gets no more rounds.
            self.forget(uid, str(meta.get("namespace", "")), str(meta.get("name", "")))
            return
        self._memory.keep_body(uid, body)
        annotations = meta.get("annotations") or {}
        seen = (int(meta.get("generation") or 0), annotations.get(ACTION_ANNOTATION))
        if self._memory.see(uid, seen) and not self.paused:
            self._scheduler.schedule(uid)

    def wake(self, uid: str) -> None:
        """A round now (a probe Job finished)."""
        if uid in self._memory:
            self._scheduler.schedule(uid)

    def forget(self, uid: str, namespace: str, name: str) -> None:
        self._scheduler.remove(uid)
        self._memory.drop(uid)
        self._announcer.forget(uid)
        self._gauges.forget(uid, namespace, name)

    # --- standby (controller/standby.py) -----------------------------------------------

    @property
    def paused(self) -> bool:
        return self._scheduler.paused

    def pause(self) -> None:
        """No rounds; keep following the watch. Another replica carries on from the
        status as stored; this one, when it resumes, from the newest status it has seen."""
        self._scheduler.pause()
        self._memory.demote()
        for uid in self._memory.uids():
            self._gauges.set_mode(uid, None)

    def resume(self) -> None:
        """Every Rollout's first round here: at once when it has work that cannot wait,
        else at its next analysis slot (`rollouts.plan.wake_after_takeover`)."""
        self._scheduler.resume()
        now = datetime.now(UTC)
        for uid in self._memory.uids():
            body = self._memory.body(uid)
            self._scheduler.schedule(uid, 0.0 if body is None else self._takeover_wake(body, now))

    def _takeover_wake(self, body: Mapping[str, Any], now: datetime) -> float:
        rollout = Rollout.from_object(body)
        if rollout.spec_error is not None:
            return 0.0  # its round reports the spec
        value = rollout.annotations.get(ACTION_ANNOTATION)
        try:
            action = parse_action(value) if value else None
        except ValueError:
            action = None  # its next round reports it
        generation = int(body["metadata"].get("generation", 1))
        return wake_after_takeover(
            rollout.spec, rollout.status, generation, action, rollout.uid, now
        )

    async def close(self) -> None:
        self._scheduler.pause()

    async def _round(self, uid: str) -> float | None:
        body = self._memory.body(uid)
        if body is None:
            return None
        meta = body["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        try:
            delay = await self.reconcile(namespace, name, body)
        except ApiException as exc:
            if exc.status != 404:
                logger.warning("reconcile of rollout %s/%s failed: %s", namespace, name, exc.reason)
                return RETRY_AFTER
            # Deleted while no DELETED event could reach us (a watch re-listed after an
            # error shows only what is left): nothing left to act on.
            logger.info("rollout %s/%s is gone; no more rounds", namespace, name)
            self.forget(uid, namespace, name)
            return None
        except Exception:
            logger.exception("reconcile of rollout %s/%s failed", namespace, name)
            return RETRY_AFTER
        return delay

    # --- one round ----------------------------------------------------------------------

    async def reconcile(
        self, namespace: str, name: str, body: Mapping[str, Any] | None = None
    ) -> float:
        started = time.perf_counter()
        obj = (
            body
            if body is not None
            else await self._kube.get_custom(ROLLOUTS.plural, namespace, name)
        )
        if obj is None:
            return 3600.0
        try:
            return await self._reconcile(namespace, obj)
        finally:
            metrics.RECONCILE_SECONDS.labels("rollouts").observe(time.perf_counter() - started)

    async def _reconcile(self, namespace: str, obj: Mapping[str, Any]) -> float:
        """fetch → plan → do what the plan asks → decide → write (+ announce)."""
        # fetch: the object, and what the indexes know of the rest
        rollout = Rollout.from_object(obj)
        spec, now = rollout.spec, datetime.now(UTC)
        status = self._memory.status(rollout.uid) or rollout.status
        if not self._memory.knows_written(rollout.uid):
            self._memory.wrote(rollout.uid, visible(rollout.status), now)
        generation = int(obj["metadata"].get("generation", 1))
        if rollout.spec_error is not None:
            # The schema rejects what it can; what slips through is reported, never raised.
            await self._degrade(obj, status, generation, rollout.spec_error, now)
            return 3600.0
        record = self._flag(namespace, spec.flag_ref.name)
        action, invalid = self._pending_action(rollout.annotations, status)
        facts = self._facts(namespace, rollout, generation, record, action)
        # plan
        round_plan = plan(spec, status, facts, now)
        # do
        address = spec.analysis.prometheus.address or self._settings.prometheus_address
        client = measure.prometheus_client(address, self._settings.prometheus_timeout)
        note = ""
        if round_plan.validate:
            round_plan, note = await self._validate(client, round_plan, address, now)
        events: list[Event] = []
        status, probe = await self._probes.step(
            obj,
            spec,
            status,
            round_plan,
            now,
            facts.flag.integration if facts.flag else None,
            events,
        )
        if invalid is not None:
            events.append(Event(EventType.WARNING, "ActionInvalid", invalid))
        if round_plan.config is not None:
            self._gauges.set_mode(rollout.uid, "grouped" if round_plan.grouped else "alone")
        result, counted = await self._analyse(client, round_plan, address, spec, status, probe, now)
        # decide
        inputs = DecisionInputs(
            verdict=result.verdict if result else None,
            error_rate=result.error_rate if result else None,
            samples=result.samples if result else None,
            analysis_message=result.message if result else note,
            probe=probe,
            action=action,
            validated=round_plan.validated,
            degraded_reason=round_plan.degraded,
            flag=(
                FlagSnapshot(record.input.enabled, record.input.rollout_percent) if record else None
            ),
            published=publication(record.stored_status(), rollout_source(rollout.name))
            if record
            else None,
        )
        dspec = decision_spec(spec, generation)
        decision = decide(dspec, state_from_status(status), inputs, now)
        # write (+ announce)
        new_status = apply_to_status(status, decision, inputs, dspec, now)
        new_status = with_totals(new_status, counted)
        await self._write(obj, new_status, [*events, *decision.events], now)
        self._gauges.record(namespace, rollout, decision, result, new_status)
        # From the clock now, not the round's start: a slow round must not make the next
        # one late too.
        return next_wake(spec, new_status, rollout.uid, datetime.now(UTC))

    async def _write(
        self, obj: Mapping[str, Any], status: RolloutStatus, events: list[Event], now: datetime
    ) -> None:
        """Write the status with the round's Events recorded in it, then post them; or,
        when nothing a user sees changed and the heartbeat is not due, keep it for the
        next round."""
        meta = obj["metadata"]
        uid = meta["uid"]
        status = self._announcer.settle(uid, status)
        status = record_events(status, events, now)
        written, written_at = self._memory.written(uid)
        reason = write_reason(written, written_at, status, now, self._heartbeat)
        if reason is None:
            self._memory.remember(uid, status)
            return
        await self._kube.patch_status(
            ROLLOUTS.plural, meta["namespace"], meta["name"], _status_patch(status)
        )
        metrics.STATUS_WRITES.labels(reason.value).inc()
        self._memory.remember(uid, status)
        self._memory.wrote(uid, visible(status), now)
        await self._announcer.post(obj, status)

    # --- inputs -------------------------------------------------------------------------

    def _flag(self, namespace: str, name: str) -> FlagRecord | None:
        return next(iter(self._flags.get((namespace, name), ())), None)

    def _facts(
        self,
        namespace: str,
        rollout: Rollout,
        generation: int,
        record: FlagRecord | None,
        action: Action | None,
    ) -> RoundFacts:
        flag_name = rollout.spec.flag_ref.name
        return RoundFacts(
            namespace=namespace,
            generation=generation,
            claim=RolloutClaim(rollout.name, rollout.uid, flag_name, rollout.created),
            claims=tuple(self._claims.get((namespace, flag_name), ())),
            flag=(
                FlagFacts(record.name, record.input.key or record.name, record.integration)
                if record is not None
                else None
            ),
            action=action,
            grouping=self._settings.analysis_grouping,
        )

    async def _analyse(
        self,
        client: measure.QueryClient,
        round_plan: RoundPlan,
        address: str,
        spec: RolloutSpec,
        status: RolloutStatus,
        probe: ProbeOutcome,
        now: datetime,
    ) -> tuple[AnalysisResult | None, StageTotals | None]:
        """When the plan says an analysis is due: measure, then judge. Also the stage
        totals as counted now (grouped analysis), to keep in status."""
        config = round_plan.config
        if not round_plan.analysis_due or config is None:
            return None, None
        if round_plan.due is not None:
            metrics.ANALYSIS_LATENESS.observe(max((now - round_plan.due).total_seconds(), 0.0))
        counted: StageTotals | None = None
        if round_plan.grouped and round_plan.tick is not None:
            measured, counted = await self._measure_grouped(
                config.integration, address, spec, status, round_plan.tick
            )
        else:
            measured = await in_query_thread(
                measure.measure,
                client,
                config,
                stage=status.stage or Stage.INTERNAL,
                time_in_stage=now - (status.stage_started_at or now),
                now=now,
                timeout=self._settings.prometheus_timeout,
                address=address,
            )
            metrics.ANALYSIS_QUERIES.labels("alone").inc(measured.queries)
        verdict = judge(config, measured, probe if spec.health_probe is not None else None)
        return verdict, counted

    async def _measure_grouped(
        self,
        integration: str,
        address: str,
        spec: RolloutSpec,
        status: RolloutStatus,
        tick: datetime,
    ) -> tuple[Measurement, StageTotals | None]:
        """The stage totals brought up to `tick` from the shared tick queries."""
        counted = totals.current(status)
        if counted is None:
            return Measurement(None, None), None
        if not totals.needs_query(counted, tick):
            # Too little since the last count to ask for: judged as counted, and the gap
            # stays for the next tick's window.
            return totals.measurement(counted, 0), counted
        interval = spec.analysis.interval_delta
        window, share = totals.query_window(counted, tick, interval)
        answer = await self._grouped.counts(address, window, tick, interval)
        if answer.failure is not None:
            # Not counted: the next good tick asks for the whole gap.
            return Measurement(None, None, answer.failure, 1), counted
        counts = answer.counts.get(integration, totals.Counts())
        if counts.unreadable:
            # Not counted either: a later tick asks for the whole gap again.
            return Measurement(math.nan, None, None, 1), counted
        counted = totals.add(counted, totals.scaled(counts, share), tick)
        return totals.measurement(counted, 1), counted

    async def _validate(
        self, client: measure.QueryClient, round_plan: RoundPlan, address: str, now: datetime
    ) -> tuple[RoundPlan, str]:
        """The plan after asking Prometheus about each query (the named checks `flagops
        validate` runs too, but for the probe Secret, which the operator may not read),
        and a note while Prometheus cannot tell."""
        config = round_plan.config
        if config is None:
            return replace(round_plan, validated=False), ""
        values = template_values(config, Stage.INTERNAL, timedelta(minutes=1))
        for label, template in (
            ("errorRateQuery", config.error_rate_query),
            ("sampleCountQuery", config.sample_count_query),
        ):
            check = await self._validations.check(
                (address, rendered_or_template(template, values)),
                functools.partial(
                    measure.validate_query,
                    client,
                    template,
                    values,
                    now,
                    self._settings.prometheus_timeout,
                    address=address,
                ),
            )
            if not check.parses:
                return round_plan.invalid(f"{label} does not parse: {check.message}"), ""
            if not check.ok:
                note = f"waiting for Prometheus to validate {label}: {check.message}"
                return replace(round_plan, validated=False), note
        return replace(round_plan, validated=True), ""

    def _pending_action(
        self, annotations: Mapping[str, str], status: RolloutStatus
    ) -> tuple[Action | None, str | None]:
        """The action to perform this round, and a complaint about a malformed one (once)."""
        value = annotations.get(ACTION_ANNOTATION)
        if not value:
            return None, None
        try:
            action = parse_action(value)
        except ValueError as exc:
            if value in self._bad_actions:
                return None, None
            self._bad_actions.add(value)
            logger.warning("ignoring malformed %s annotation: %s", ACTION_ANNOTATION, exc)
            return None, f"ignored {ACTION_ANNOTATION} annotation: {exc}"
        if status.last_action is not None and status.last_action.id == action.id:
            return None, None
        return action, None

    # --- outputs ------------------------------------------------------------------------

    async def _degrade(
        self,
        obj: Mapping[str, Any],
        status: RolloutStatus,
        generation: int,
        reason: str,
        now: datetime,
    ) -> None:
        conditions = set_condition(
            list(status.conditions),
            RolloutCondition.VALIDATED,
            ConditionStatus.FALSE,
            "InvalidSpec",
            reason,
            now,
            generation,
        )
        new_status = status.model_copy(
            update={"phase": Phase.DEGRADED, "message": reason, "conditions": conditions}
        )
        events = []
        if status.phase != Phase.DEGRADED:
            events.append(Event(EventType.WARNING, "InvalidSpec", reason))
        await self._write(obj, new_status, events, now)
