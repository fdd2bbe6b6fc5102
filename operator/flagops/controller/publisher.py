"""Publishes each namespace's flags into its ConfigMap and reports back on every FeatureFlag.

Inputs come from kopf indexes (complete before any handler runs, so a restarted
operator never publishes a half-listed namespace); the decision is
`flagops.flags.resolve`; this module only does the I/O.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from flagops.api.common import Condition, ConditionStatus, get_condition, set_condition
from flagops.api.featureflag import FeatureFlagCondition
from flagops.api.resources import GROUP, VERSION
from flagops.controller import metrics
from flagops.controller.coalescer import Coalescer
from flagops.controller.kube import Kube
from flagops.controller.settings import Settings
from flagops.flags.document import FlagState, document_from_entries
from flagops.flags.resolve import (
    FlagInput,
    FlagOutcome,
    RolloutControl,
    effective_state,
    resolve,
)

logger = logging.getLogger(__name__)

FLAGS_KEY = "flags.json"
MANAGED_BY = {"app.kubernetes.io/managed-by": "flagops"}
REVISION_ANNOTATION = "flagops.dev/revision"
STATUS_PATCH_CONCURRENCY = 16


@dataclass(frozen=True)
class FlagRecord:
    """What the flag index keeps of one FeatureFlag."""

    name: str
    uid: str
    generation: int
    input: FlagInput
    status: Mapping[str, Any] = field(default_factory=dict)
    integration: str | None = None

    def involved(self, namespace: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "FeatureFlag",
            "metadata": {"name": self.name, "namespace": namespace, "uid": self.uid},
        }


@dataclass
class _Memory:
    """What a namespace's last flush computed, so the next one redoes only what changed.

    Entries are keyed by object identity: the kopf index builds a new FlagRecord for
    every event, so an unchanged identity means an unchanged flag (the cache keeps the
    objects alive, so identities are never reused while cached).
    """

    states: dict[str, tuple[FlagInput, RolloutControl | None, FlagState, str]] = field(
        default_factory=dict
    )
    entries: dict[str, tuple[FlagState, dict[str, Any]]] = field(default_factory=dict)
    reported: dict[str, tuple[FlagRecord, FlagOutcome]] = field(default_factory=dict)
    written: str | None = None

    def state_of(self, flag: FlagInput, control: RolloutControl | None) -> tuple[FlagState, str]:
        hit = self.states.get(flag.name)
        if hit is not None and hit[0] is flag and hit[1] == control:
            return hit[2], hit[3]
        state, source = effective_state(flag, control)
        self.states[flag.name] = (flag, control, state, source)
        return state, source

    def entry(self, key: str, state: FlagState) -> dict[str, Any]:
        hit = self.entries.get(key)
        if hit is not None and hit[0] is state:
            return hit[1]
        dumped = state.to_json_obj()
        self.entries[key] = (state, dumped)
        return dumped

    def forget_all_but(self, names: set[str], keys: set[str]) -> None:
        for gone in self.states.keys() - names:
            del self.states[gone]
        for gone in self.reported.keys() - names:
            del self.reported[gone]
        for gone in self.entries.keys() - keys:
            del self.entries[gone]


class FlagPublisher:
    def __init__(self, kube: Kube, settings: Settings) -> None:
        self._kube = kube
        self._settings = settings
        self._coalescers: dict[str, Coalescer] = {}
        self._memory: dict[str, _Memory] = {}
        # Live kopf indexes, bound by the first handler call: namespace -> records.
        self._flags: Mapping[str, Iterable[FlagRecord]] = {}
        self._rollouts: Mapping[str, Iterable[RolloutControl | None]] = {}
        self._configmaps: Mapping[str, Iterable[str | None]] = {}

    def bind(
        self,
        flags: Mapping[str, Iterable[FlagRecord]],
        rollouts: Mapping[str, Iterable[RolloutControl | None]],
        configmaps: Mapping[str, Iterable[str | None]],
    ) -> None:
        self._flags, self._rollouts, self._configmaps = flags, rollouts, configmaps

    def request(self, namespace: str) -> None:
        coalescer = self._coalescers.get(namespace)
        if coalescer is None:
            coalescer = Coalescer(
                lambda: self.flush(namespace),
                min_interval=self._settings.publish_min_interval,
                max_interval=self._settings.publish_max_interval,
                name=namespace,
            )
            self._coalescers[namespace] = coalescer
        coalescer.request()

    def wrote(self, namespace: str, text: str | None) -> bool:
        """Whether `text` is what this publisher last wrote there (an echo of our write)."""
        memory = self._memory.get(namespace)
        return memory is not None and text is not None and memory.written == text

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self._coalescers.values()))

    async def flush(self, namespace: str) -> bool:
        """Publish the namespace; True when anything was written."""
        started = time.perf_counter()
        memory = self._memory.setdefault(namespace, _Memory())
        records = list(self._flags.get(namespace, ()))
        rollouts = [r for r in self._rollouts.get(namespace, ()) if r is not None]
        resolution = resolve([r.input for r in records], rollouts, memory.state_of)
        text, revision = document_from_entries(
            {key: memory.entry(key, state) for key, state in resolution.published.items()}
        )
        memory.forget_all_but({r.name for r in records}, set(resolution.published))
        wrote = await self._write_configmap(namespace, memory, text, revision)
        reported = await self._report(namespace, memory, records, resolution.outcomes, revision)
        metrics.RECONCILE_SECONDS.labels("featureflags").observe(time.perf_counter() - started)
        return wrote or reported

    async def _write_configmap(
        self, namespace: str, memory: _Memory, text: str, revision: str
    ) -> bool:
        name = self._settings.configmap_name
        if text in self._configmaps.get(namespace, ()):
            memory.written = text
            return False
        if text == memory.written:
            # Written by us already: the index lags behind our write, or someone changed
            # the ConfigMap since. Only the live object can tell.
            live = await self._kube.read_configmap(namespace, name)
            if live is not None and (live.get("data") or {}).get(FLAGS_KEY) == text:
                return False
        try:
            await self._kube.write_configmap(
                namespace,
                name,
                {FLAGS_KEY: text},
                labels=MANAGED_BY,
                annotations={REVISION_ANNOTATION: revision},
            )
        except ApiException as exc:
            if namespace_going_away(exc):
                # Nothing to publish into; its flags' deletion events follow.
                logger.info("namespace %s is being deleted; not publishing", namespace)
                return False
            raise
        memory.written = text
        metrics.CONFIGMAP_WRITES.labels(namespace).inc()
        logger.info(
            "published %s/%s revision %s",
            namespace,
            name,
            revision[:12],
            extra={"namespace": namespace, "revision": revision},
        )
        return True

    async def _report(
        self,
        namespace: str,
        memory: _Memory,
        records: list[FlagRecord],
        outcomes: Mapping[str, FlagOutcome],
        revision: str,
    ) -> bool:
        """Patch the status of every flag whose outcome or object changed; True if any."""
        now = datetime.now(UTC).replace(microsecond=0)
        semaphore = asyncio.Semaphore(STATUS_PATCH_CONCURRENCY)

        async def one(record: FlagRecord, outcome: FlagOutcome) -> bool:
            status, new_conflict = desired_status(
                record, outcome, revision, self._settings.configmap_name, now
            )
            # A merge patch deletes null fields, so the stored status never holds them.
            if prune_none(status) == {k: record.status[k] for k in status if k in record.status}:
                memory.reported[record.name] = (record, outcome)
                return False
            async with semaphore:
                try:
                    await self._kube.patch_status("featureflags", namespace, record.name, status)
                except Exception as exc:
                    # Deleted meanwhile, or a transient API error: the next event retries.
                    logger.warning("status of %s/%s not written: %s", namespace, record.name, exc)
                    return False
                memory.reported[record.name] = (record, outcome)
                if new_conflict:
                    await self._kube.post_event(
                        record.involved(namespace),
                        "Warning",
                        "KeyConflict",
                        _conflict_message(outcome),
                    )
            return True

        pending = []
        for record in records:
            outcome = outcomes.get(record.name)
            if outcome is None:
                continue
            seen = memory.reported.get(record.name)
            if seen is not None and seen[0] is record and seen[1] == outcome:
                continue
            pending.append(one(record, outcome))
        return any(await asyncio.gather(*pending))


def namespace_going_away(exc: ApiException) -> bool:
    body = exc.body if isinstance(exc.body, str) else ""
    return (exc.status == 403 and "NamespaceTerminating" in body) or (
        exc.status == 404 and '"kind":"namespaces"' in body.replace(" ", "")
    )


def prune_none(value: Any) -> Any:
    """`value` without null entries, as the apiserver stores a merge-patched object."""
    if isinstance(value, dict):
        return {k: prune_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_none(v) for v in value]
    return value


def _conflict_message(outcome: FlagOutcome) -> str:
    others = ", ".join(outcome.conflict_with)
    if outcome.published:
        return (
            f"key {outcome.key!r} is also claimed by FeatureFlag {others}; "
            "this older flag stays published"
        )
    return (
        f"key {outcome.key!r} is already published by older FeatureFlag {others}; "
        "this flag is not published until the key is unique"
    )


def desired_status(
    record: FlagRecord,
    outcome: FlagOutcome,
    revision: str,
    configmap_name: str,
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """The FeatureFlag's status after a publish, and whether a key conflict just began.

    `publishedRevision` is the document revision that first carried this flag's
    current state, so it moves only when the flag's own published state does.
    """
    current = record.status
    conditions = [Condition.model_validate(c) for c in current.get("conditions") or []]
    gen = record.generation
    effective = outcome.effective()
    if outcome.error is not None:
        published = (ConditionStatus.FALSE, "InvalidSpec", outcome.error)
    elif outcome.published:
        published = (
            ConditionStatus.TRUE,
            "Published",
            f"published as {outcome.key!r} in ConfigMap {configmap_name}",
        )
    else:
        published = (ConditionStatus.FALSE, "KeyConflict", _conflict_message(outcome))
    conditions = set_condition(
        conditions, FeatureFlagCondition.PUBLISHED, *published, now=now, observed_generation=gen
    )
    was_conflict = get_condition(conditions, FeatureFlagCondition.CONFLICT)
    if outcome.conflict_with:
        conflict = (ConditionStatus.TRUE, "DuplicateKey", _conflict_message(outcome))
    else:
        conflict = (ConditionStatus.FALSE, "UniqueKey", f"no other flag uses key {outcome.key!r}")
    conditions = set_condition(
        conditions, FeatureFlagCondition.CONFLICT, *conflict, now=now, observed_generation=gen
    )
    new_conflict = bool(outcome.conflict_with) and (
        was_conflict is None or was_conflict.status != ConditionStatus.TRUE
    )

    published_revision = current.get("publishedRevision")
    if outcome.published and (
        prune_none(effective) != current.get("effective") or not published_revision
    ):
        published_revision = revision
    status: dict[str, Any] = {
        "observedGeneration": gen,
        "effective": effective,
        "publishedRevision": published_revision if outcome.published else None,
        "conditions": [c.to_api() for c in conditions],
    }
    return status, new_conflict
