"""Writes each namespace's shared flags into the namespaces it shares them with.

The publisher calls `publish` in the same flush that writes the owner's own
ConfigMap, so a copy changes as fast as the original. The decision (which flag
goes where, what the `Shared` condition says) is `flagops.publishing.sharing`; this
module does the I/O and never touches a ConfigMap flagops did not create.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from flagops.api.common import Condition, ConditionStatus, get_condition, set_condition
from flagops.controller import metrics
from flagops.controller.kube import Kube
from flagops.controller.settings import Settings
from flagops.flags.document import build_document
from flagops.publishing.resolve import FlagInput, Resolution
from flagops.publishing.sharing import (
    CONDITION as SHARED_CONDITION,
)
from flagops.publishing.sharing import (
    SHARED_FROM_LABEL,
    CopyResult,
    ShareReport,
    copy_name,
    owner_of_copy,
    plan_shares,
    share_report,
)

logger = logging.getLogger(__name__)

FLAGS_KEY = "flags.json"
MANAGED_BY_KEY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "flagops"
REVISION_ANNOTATION = "flagops.dev/revision"
# A failed write (not a missing namespace, not a foreign ConfigMap) is retried this late.
RETRY_SECONDS = 5.0
WRITE_CONCURRENCY = 8
REQUEST_TIMEOUT = (5.0, 30.0)  # connect, read (seconds)


@dataclass(frozen=True)
class CopyRecord:
    """What the copy index keeps of one copy in a target namespace."""

    namespace: str
    uid: str
    text: str | None


def copy_record(configmap_name: str, body: Mapping[str, Any]) -> tuple[str, CopyRecord] | None:
    """(owner namespace, record) for a copy flagops wrote; None for any other ConfigMap."""
    meta = body.get("metadata") or {}
    owner = owner_of_copy(
        configmap_name, meta.get("name", ""), (meta.get("labels") or {}).get(SHARED_FROM_LABEL)
    )
    if owner is None or not isinstance(meta.get("namespace"), str):
        return None
    text = (body.get("data") or {}).get(FLAGS_KEY)
    return owner, CopyRecord(meta["namespace"], meta.get("uid", ""), text)


def _ours(body: Mapping[str, Any] | None, owner: str) -> bool:
    labels = ((body or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(MANAGED_BY_KEY) == MANAGED_BY_VALUE and labels.get(SHARED_FROM_LABEL) == owner


def _namespace_missing(exc: ApiException) -> bool:
    body = exc.body if isinstance(exc.body, str) else ""
    compact = body.replace(" ", "")
    return (exc.status == 404 and '"kind":"namespaces"' in compact) or (
        exc.status == 403 and "NamespaceTerminating" in body
    )


@dataclass
class _Owner:
    written: dict[str, str] = field(default_factory=dict)  # target -> text we wrote
    blocked: dict[str, tuple[str, ...]] = field(default_factory=dict)  # flag -> targets


class ShareWriter:
    def __init__(self, kube: Kube, settings: Settings, request: Callable[[str], None]) -> None:
        self._kube = kube
        self._settings = settings
        self._request = request
        self._owners: dict[str, _Owner] = {}
        # Target namespaces that did not exist at the last write -> owners waiting for them.
        self._missing: dict[str, set[str]] = {}
        self._copies: Mapping[str, Iterable[CopyRecord | None]] = {}
        self._retries: set[str] = set()

    def bind(self, copies: Mapping[str, Iterable[CopyRecord | None]]) -> None:
        self._copies = copies

    @property
    def clusterwide(self) -> bool:
        return self._settings.clusterwide

    def watched(self, namespace: str) -> bool:
        return self._settings.clusterwide or namespace in self._settings.namespaces

    def wrote(self, owner: str, target: str, text: str | None) -> bool:
        """Whether `text` is what this writer last put in `owner`'s copy in `target`."""
        memory = self._owners.get(owner)
        return memory is not None and text is not None and memory.written.get(target) == text

    def namespace_appeared(self, namespace: str) -> None:
        for owner in sorted(self._missing.pop(namespace, ())):
            self._request(owner)

    def owners_with_copies_in(self, namespace: str) -> set[str]:
        found = {o for o, memory in self._owners.items() if namespace in memory.written}
        for owner, records in self._copies.items():
            if any(r is not None and r.namespace == namespace for r in records):
                found.add(owner)
        return found

    async def publish(
        self,
        owner: str,
        flags: Sequence[FlagInput],
        resolution: Resolution,
        uids: Mapping[str, str],
    ) -> tuple[bool, dict[str, ShareReport]]:
        """Write, rewrite and delete `owner`'s copies; (anything written, flag reports).

        `uids` (FeatureFlag name -> uid) lets Events name the flag they are about.
        """
        memory = self._owners.setdefault(owner, _Owner())
        plan = plan_shares(owner, flags, resolution)
        existing = {r.namespace: r for r in self._copies.get(owner, ()) if r is not None}
        name = copy_name(self._settings.configmap_name, owner)
        results: dict[str, CopyResult] = {}
        changed = False
        semaphore = asyncio.Semaphore(WRITE_CONCURRENCY)

        async def write(target: str) -> tuple[CopyResult, bool]:
            text, revision = build_document(plan.copies[target])
            async with semaphore:
                return await self._write(owner, target, name, text, revision, existing)

        # The copies are written side by side: the last of several targets is not kept
        # waiting behind the others.
        targets = sorted(plan.copies)
        for target, (result, wrote) in zip(
            targets, await asyncio.gather(*(write(t) for t in targets)), strict=True
        ):
            results[target] = result
            changed |= wrote
        for target in sorted((existing.keys() | memory.written.keys()) - plan.copies.keys()):
            record = existing.get(target)
            changed |= await self._delete(owner, target, name, record)
        for target in [t for t in self._missing if owner in self._missing[t]]:
            if results.get(target) is not CopyResult.NAMESPACE_NOT_FOUND:
                self._missing[target].discard(owner)
                if not self._missing[target]:
                    del self._missing[target]
        if CopyResult.FAILED in results.values():
            self._retry(owner)
        reports = {}
        for flag in flags:
            if not flag.shared_with:
                continue
            outcome = resolution.outcomes.get(flag.name)
            published = outcome is not None and outcome.published
            reports[flag.name] = share_report(flag, owner, published, results, name)
        await self._warn_blocked(owner, memory, flags, reports, name, uids)
        return changed, reports

    async def _write(
        self,
        owner: str,
        target: str,
        name: str,
        text: str,
        revision: str,
        existing: Mapping[str, CopyRecord],
    ) -> tuple[CopyResult, bool]:
        if not self.watched(target):
            return CopyResult.NOT_WATCHED, False
        memory = self._owners[owner]
        record = existing.get(target)
        if record is not None and record.text == text:
            memory.written[target] = text
            return CopyResult.WRITTEN, False
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": target,
                "labels": {MANAGED_BY_KEY: MANAGED_BY_VALUE, SHARED_FROM_LABEL: owner},
                "annotations": {REVISION_ANNOTATION: revision},
            },
            "data": {FLAGS_KEY: text},
        }
        try:
            if record is not None:
                # The index holds our copy: one patch, bound to that object's uid.
                await self._patch(target, name, body, {"uid": record.uid})
            elif memory.written.get(target) != text:
                if not await self._create_or_adopt(owner, target, name, body):
                    return CopyResult.NOT_MANAGED, False
            else:
                # We wrote this text and the index has not caught up: the live object decides.
                live = await self._read(target, name)
                if live is None:
                    await self._call(self._kube.core.create_namespaced_config_map, target, body)
                elif not _ours(live, owner):
                    return CopyResult.NOT_MANAGED, False
                elif (live.get("data") or {}).get(FLAGS_KEY) == text:
                    memory.written[target] = text
                    return CopyResult.WRITTEN, False
                else:
                    await self._patch(target, name, body, live.get("metadata") or {})
        except ApiException as exc:
            if _namespace_missing(exc):
                self._missing.setdefault(target, set()).add(owner)
                return CopyResult.NAMESPACE_NOT_FOUND, False
            logger.warning("copy %s/%s of %s not written: HTTP %s", target, name, owner, exc.status)
            return CopyResult.FAILED, False
        except HTTPError as exc:  # the API server unreachable, or no answer in time
            logger.warning(
                "copy %s/%s of %s not written: %s", target, name, owner, type(exc).__name__
            )
            return CopyResult.FAILED, False
        memory.written[target] = text
        metrics.CONFIGMAP_WRITES.labels(target).inc()
        logger.info(
            "shared %s's flags with %s (revision %s)",
            owner,
            target,
            revision[:12],
            extra={"namespace": owner, "target": target, "revision": revision},
        )
        return CopyResult.WRITTEN, True

    async def _create_or_adopt(
        self, owner: str, target: str, name: str, body: dict[str, Any]
    ) -> bool:
        """Create the copy; when one of that name exists, rewrite it only if it is ours."""
        try:
            await self._call(self._kube.core.create_namespaced_config_map, target, body)
            return True
        except ApiException as exc:
            if exc.status != 409:
                raise
        live = await self._read(target, name)
        if live is None:
            # Deleted between our create and read: the next flush creates it.
            raise ApiException(status=409, reason="Conflict")
        if not _ours(live, owner):
            return False
        await self._patch(target, name, body, live.get("metadata") or {})
        return True

    async def _patch(
        self, target: str, name: str, body: dict[str, Any], seen: Mapping[str, Any]
    ) -> None:
        # The uid (and resourceVersion, when read just before) make the patch fail with a
        # conflict rather than land on a ConfigMap someone replaced since we saw it.
        guard = {k: seen[k] for k in ("uid", "resourceVersion") if seen.get(k)}
        patch = {**body, "metadata": {**body["metadata"], **guard}}
        await self._call(self._kube.core.patch_namespaced_config_map, name, target, patch)

    async def _delete(self, owner: str, target: str, name: str, record: CopyRecord | None) -> bool:
        memory = self._owners[owner]
        memory.written.pop(target, None)
        if record is None:
            live = await self._read_quietly(target, name)
            if live is None or not _ours(live, owner):
                return False
            uid = (live.get("metadata") or {}).get("uid", "")
        else:
            uid = record.uid
        from kubernetes import client

        try:
            await self._call(
                self._kube.core.delete_namespaced_config_map,
                name,
                target,
                body=client.V1DeleteOptions(preconditions=client.V1Preconditions(uid=uid)),
            )
        except ApiException as exc:
            if exc.status in (404, 409) or _namespace_missing(exc):
                return False  # gone already, or replaced by an object that is not ours
            logger.warning("copy %s/%s of %s not deleted: HTTP %s", target, name, owner, exc.status)
            self._retry(owner)
            return False
        except HTTPError as exc:
            logger.warning(
                "copy %s/%s of %s not deleted: %s", target, name, owner, type(exc).__name__
            )
            self._retry(owner)
            return False
        logger.info(
            "%s shares no flag with %s any more: deleted %s",
            owner,
            target,
            name,
            extra={"namespace": owner, "target": target},
        )
        return True

    async def _warn_blocked(
        self,
        owner: str,
        memory: _Owner,
        flags: Sequence[FlagInput],
        reports: Mapping[str, ShareReport],
        name: str,
        uids: Mapping[str, str],
    ) -> None:
        """A Warning Event on a flag when a foreign ConfigMap newly blocks one of its copies."""
        for flag in flags:
            report = reports.get(flag.name)
            blocked = report.blocked if report is not None else ()
            before = memory.blocked.get(flag.name, ())
            if blocked:
                memory.blocked[flag.name] = blocked
            else:
                memory.blocked.pop(flag.name, None)
            new = [t for t in blocked if t not in before]
            if not new:
                continue
            uid = uids.get(flag.name)
            await self._kube.post_event(
                {
                    "apiVersion": "flagops.dev/v1alpha1",
                    "kind": "FeatureFlag",
                    "metadata": {"name": flag.name, "namespace": owner, "uid": uid},
                },
                "Warning",
                "ShareBlocked",
                f"not shared with {', '.join(new)}: a ConfigMap {name} not managed by flagops"
                " exists there; flagops never overwrites it (delete or rename it)",
            )

    def _retry(self, owner: str) -> None:
        if owner in self._retries:
            return
        self._retries.add(owner)

        def again() -> None:
            self._retries.discard(owner)
            self._request(owner)

        asyncio.get_running_loop().call_later(RETRY_SECONDS, again)

    async def _read(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self._kube.read_configmap(namespace, name)

    async def _read_quietly(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._read(namespace, name)
        except ApiException:
            return None

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        # Bounded, so an API server that accepts and never answers cannot stall the
        # owner's publishing; a timeout is a failed write, retried.
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        return await asyncio.to_thread(partial(fn, *args, **kwargs))


def with_share_condition(
    status: dict[str, Any], report: ShareReport | None, generation: int, now: datetime
) -> dict[str, Any]:
    """`status` with the flag's `Shared` condition: set while spec.sharedWith lists any
    namespace, turned False once it lists none (absent on flags that never shared)."""
    conditions = [Condition.model_validate(c) for c in status.get("conditions") or []]
    if report is None:
        if get_condition(conditions, SHARED_CONDITION) is None:
            return status
        report = ShareReport(False, "NotShared", "spec.sharedWith lists no namespace")
    conditions = set_condition(
        conditions,
        SHARED_CONDITION,
        ConditionStatus.TRUE if report.status else ConditionStatus.FALSE,
        report.reason,
        report.message,
        now=now,
        observed_generation=generation,
    )
    return {**status, "conditions": [c.to_api() for c in conditions]}
