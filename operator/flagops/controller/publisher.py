"""Publishes each namespace's flags into its ConfigMap and reports back on every FeatureFlag.

Inputs come from kopf indexes (complete before any handler runs, so a restarted
operator never publishes a half-listed namespace); the decision is
`flagops.publishing.resolve`; this module only does the I/O.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException

from flagops.controller import metrics
from flagops.controller.coalescer import Coalescer
from flagops.controller.kube import Kube
from flagops.controller.settings import Settings
from flagops.controller.sharing import ShareWriter, with_share_condition
from flagops.flags.document import FlagState, read_document
from flagops.publishing.fit import Fitted, entry_size, fit_document
from flagops.publishing.record import FlagRecord
from flagops.publishing.resolve import (
    FlagInput,
    FlagOutcome,
    Resolution,
    RolloutControl,
    effective_state,
    resolve,
)
from flagops.publishing.sharing import ShareReport
from flagops.publishing.status import (
    DOCUMENT_TOO_LARGE,
    conflict_message,
    desired_status,
    prune_none,
    too_large_message,
    was_omitted,
)

logger = logging.getLogger(__name__)

FLAGS_KEY = "flags.json"
MANAGED_BY = {"app.kubernetes.io/managed-by": "flagops"}
REVISION_ANNOTATION = "flagops.dev/revision"
STATUS_PATCH_CONCURRENCY = 16


class PublishFailed(Exception):
    """The namespace's ConfigMap could not be written; the message says why (no secrets)."""


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
    sizes: dict[str, int] = field(default_factory=dict)
    # Per flag: the record and (outcome, Shared report) last reported.
    reported: dict[str, tuple[FlagRecord, tuple[FlagOutcome, ShareReport | None]]] = field(
        default_factory=dict
    )
    written: str | None = None
    # The entries of the document last written (None: not known since the start).
    live: dict[str, Any] | None = None
    omitted: tuple[str, ...] = ()

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
        self.sizes[key] = entry_size(key, dumped)
        return dumped

    def forget_all_but(self, names: set[str], keys: set[str]) -> None:
        for gone in self.states.keys() - names:
            del self.states[gone]
        for gone in self.reported.keys() - names:
            del self.reported[gone]
        for gone in self.entries.keys() - keys:
            del self.entries[gone]
            self.sizes.pop(gone, None)


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
        # Copies of the flags other namespaces are let to read (spec.sharedWith).
        self.sharing = ShareWriter(kube, settings, self.request)
        # A standby (controller/standby.py) writes nothing: requests wait for resume().
        self._paused = False
        self._pending: set[str] = set()

    def bind(
        self,
        flags: Mapping[str, Iterable[FlagRecord]],
        rollouts: Mapping[str, Iterable[RolloutControl | None]],
        configmaps: Mapping[str, Iterable[str | None]],
    ) -> None:
        self._flags, self._rollouts, self._configmaps = flags, rollouts, configmaps

    def pause(self) -> None:
        """Write nothing; another replica publishes. What this one wrote stops counting
        as live: the next flush compares with the ConfigMaps as stored."""
        self._paused = True
        self._memory.clear()

    def resume(self) -> None:
        """Publish every namespace known: the replica that was active may have stopped
        between a change and its write (a flush that changes nothing writes nothing)."""
        self._paused = False
        namespaces = self._pending | set(self._flags) | set(self._configmaps) | set(self._rollouts)
        self._pending.clear()
        for namespace in sorted(n for n in namespaces if n):
            self.request(namespace)

    def request(self, namespace: str) -> None:
        if self._paused:
            self._pending.add(namespace)
            return
        coalescer = self._coalescers.get(namespace)
        if coalescer is None:
            coalescer = Coalescer(
                lambda: self.flush(namespace),
                min_interval=self._settings.publish_min_interval,
                max_interval=self._settings.publish_max_interval,
                retry_initial=self._settings.publish_retry_initial,
                retry_max=self._settings.publish_retry_max,
                expected=(PublishFailed,),
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
        """Publish the namespace; True when the ConfigMap was written (status patches alone
        do not make a burst: they must not slow the next change's write)."""
        if self._paused:
            # Requested before this replica paused: the one now active publishes it.
            self._pending.add(namespace)
            return False
        started = time.perf_counter()
        memory = self._memory.setdefault(namespace, _Memory())
        records = list(self._flags.get(namespace, ()))
        rollouts = [r for r in self._rollouts.get(namespace, ()) if r is not None]
        resolution = resolve([r.input for r in records], rollouts, memory.state_of)
        entries = {key: memory.entry(key, state) for key, state in resolution.published.items()}
        memory.forget_all_but({r.name for r in records}, set(entries))
        fitted = fit_document(
            entries, resolution.order, self._settings.max_document_bytes, memory.sizes
        )
        resolution = resolution.leave_out(fitted.omitted)
        self._note_fit(namespace, memory, fitted)
        try:
            wrote = await self._write_configmap(namespace, memory, fitted.text, fitted.revision)
        except Exception as exc:
            metrics.PUBLISH_FAILURES.labels(namespace).inc()
            why = describe_failure(exc)
            # Flags whose state is not live must not go on saying Published.
            unwritten = self._unwritten(namespace, memory, entries, resolution, why)
            await self._report(namespace, memory, records, unwritten, fitted.revision)
            raise PublishFailed(
                f"ConfigMap {namespace}/{self._settings.configmap_name} not written: {why}"
            ) from None
        memory.live = {key: entries[key] for key in fitted.kept}
        # The copies for the namespaces these flags are shared with (docs/sharing.md).
        shared, shares = await self.sharing.publish(
            namespace, [r.input for r in records], resolution, {r.name: r.uid for r in records}
        )
        await self._report(namespace, memory, records, resolution.outcomes, fitted.revision, shares)
        metrics.RECONCILE_SECONDS.labels("featureflags").observe(time.perf_counter() - started)
        return wrote or shared

    def _note_fit(self, namespace: str, memory: _Memory, fitted: Fitted) -> None:
        metrics.PUBLISH_DOCUMENT_BYTES.labels(namespace).set(fitted.size)
        metrics.PUBLISH_FLAGS_OMITTED.labels(namespace).set(len(fitted.omitted))
        if fitted.omitted != memory.omitted:
            # One line per change of what is left out, not one per flush.
            if fitted.omitted:
                logger.warning(
                    "namespace %s: %d flag(s) left out of ConfigMap %s, the document would"
                    " pass %d bytes: %s",
                    namespace,
                    len(fitted.omitted),
                    self._settings.configmap_name,
                    self._settings.max_document_bytes,
                    ", ".join(fitted.omitted[:10]) + (" ..." if len(fitted.omitted) > 10 else ""),
                )
            else:
                logger.info("namespace %s: every flag fits in the ConfigMap again", namespace)
            memory.omitted = fitted.omitted

    def _unwritten(
        self,
        namespace: str,
        memory: _Memory,
        entries: Mapping[str, Any],
        resolution: Resolution,
        why: str,
    ) -> dict[str, FlagOutcome]:
        """The outcomes after a failed write: a flag whose entry is not live says why."""
        live = memory.live
        if live is None:
            live = self._live_entries(namespace)
        message = f"ConfigMap {self._settings.configmap_name} not written: {why}"
        return {
            name: replace(o, published=False, write_error=message)
            if o.published and o.key is not None and live.get(o.key) != entries.get(o.key)
            else o
            for name, o in resolution.outcomes.items()
        }

    def _live_entries(self, namespace: str) -> dict[str, Any]:
        for text in self._configmaps.get(namespace, ()):
            if text is None:
                continue
            try:
                return dict(read_document(text)[1])
            except ValueError:
                return {}
        return {}

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
        shares: Mapping[str, ShareReport] | None = None,
    ) -> bool:
        """Patch the status of every flag whose outcome or object changed; True if any.

        `shares` None (the ConfigMap write failed, nothing was shared) keeps each flag's
        `Shared` condition as it is."""
        now = datetime.now(UTC).replace(microsecond=0)
        # After the ConfigMap write, to the microsecond: a Rollout's bake counts from it.
        published_at = datetime.now(UTC)
        semaphore = asyncio.Semaphore(STATUS_PATCH_CONCURRENCY)

        failures: list[str] = []

        def seen_now(record: FlagRecord) -> tuple[FlagOutcome, ShareReport | None]:
            outcome = outcomes[record.name]
            return outcome, (None if shares is None else shares.get(record.name))

        async def one(record: FlagRecord, outcome: FlagOutcome) -> bool:
            try:
                status, new_conflict = desired_status(
                    record,
                    outcome,
                    revision,
                    self._settings.configmap_name,
                    now,
                    self._settings.max_document_bytes,
                    published_at=published_at,
                )
                if shares is not None:
                    status = with_share_condition(
                        status, shares.get(record.name), record.generation, now
                    )
            except Exception as exc:
                # One flag's unreadable status must not stop the others' reports.
                failures.append(f"{record.name}: {type(exc).__name__}: {exc}"[:300])
                return False
            # A merge patch deletes null fields, so the stored status never holds them.
            stored = record.stored_status()
            if prune_none(status) == {k: stored[k] for k in status if k in stored}:
                memory.reported[record.name] = (record, seen_now(record))
                return False
            async with semaphore:
                try:
                    await self._kube.patch_status("featureflags", namespace, record.name, status)
                except Exception as exc:
                    # Deleted meanwhile, or a transient API error: the next event retries.
                    failures.append(f"{record.name}: {describe_failure(exc)}")
                    return False
                memory.reported[record.name] = (record, seen_now(record))
                if new_conflict:
                    await self._kube.post_event(
                        record.involved(namespace),
                        "Warning",
                        "KeyConflict",
                        conflict_message(outcome),
                    )
                if outcome.omitted and not was_omitted(record):
                    await self._kube.post_event(
                        record.involved(namespace),
                        "Warning",
                        DOCUMENT_TOO_LARGE,
                        self._too_large_message(outcome),
                    )
            return True

        pending = []
        for record in records:
            outcome = outcomes.get(record.name)
            if outcome is None:
                continue
            seen = memory.reported.get(record.name)
            if seen is not None and seen[0] is record and seen[1] == seen_now(record):
                continue
            pending.append(one(record, outcome))
        written = any(await asyncio.gather(*pending))
        if failures:
            logger.warning(
                "namespace %s: status of %d flag(s) not written, retried on their next change: %s",
                namespace,
                len(failures),
                "; ".join(failures[:3]),
            )
        return written

    def _too_large_message(self, outcome: FlagOutcome) -> str:
        return too_large_message(
            outcome, self._settings.configmap_name, self._settings.max_document_bytes
        )


def describe_failure(exc: BaseException) -> str:
    """One line for a failed API call: status, reason and the apiserver's message."""
    if isinstance(exc, ApiException):
        message = ""
        if isinstance(exc.body, str | bytes):
            try:
                parsed = json.loads(exc.body)
                message = str(parsed.get("message", "")) if isinstance(parsed, dict) else ""
            except ValueError:
                message = ""
        detail = f": {message[:300]}" if message else ""
        return f"HTTP {exc.status} {exc.reason or ''}".rstrip() + detail
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def namespace_going_away(exc: ApiException) -> bool:
    body = exc.body if isinstance(exc.body, str) else ""
    return (exc.status == 403 and "NamespaceTerminating" in body) or (
        exc.status == 404 and '"kind":"namespaces"' in body.replace(" ", "")
    )
