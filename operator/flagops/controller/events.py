"""What the operator does with each watch event: the methods every kopf handler calls.

controller/handlers.py only registers; each handler there is one call to a method
here, so what is filtered out (our own status writes, a Rollout's analysis
writes) and what a deletion announces are plain methods with unit tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from flagops.api.featureflag import FeatureFlag
from flagops.api.rollout import Rollout
from flagops.api.validation import RolloutClaim, claim_from_object
from flagops.controller.publisher import FLAGS_KEY
from flagops.controller.sharing_events import COPY_INDEX
from flagops.publishing.record import FlagRecord
from flagops.publishing.resolve import FlagInput, RolloutControl, effective_state

FLAG_INDEX, FLAG_BY_NAME_INDEX, ROLLOUT_INDEX, CLAIM_INDEX, CONFIGMAP_INDEX = (
    "flag_index",  # namespace -> its flags (publishing reads a namespace at a time)
    "flag_by_name_index",  # (namespace, name) -> the flag (a Rollout's round reads one)
    "rollout_index",
    "claim_index",  # (namespace, flag name) -> the Rollouts that name the flag
    "configmap_index",
)


class EventPoster(Protocol):
    async def post_event(
        self, involved: Mapping[str, Any], type_: str, reason: str, message: str
    ) -> None: ...


class CopyIndexUser(Protocol):
    def bind(self, copies: Any) -> None: ...


class Publisher(Protocol):
    """What events need of `FlagPublisher`."""

    @property
    def sharing(self) -> CopyIndexUser: ...

    def bind(self, flags: Any, rollouts: Any, configmaps: Any) -> None: ...

    def request(self, namespace: str) -> None: ...

    def wrote(self, namespace: str, text: str | None) -> bool: ...

    async def close(self) -> None: ...


class Reconciler(Protocol):
    """What events need of `RolloutReconciler`."""

    def bind(self, flags: Any, claims: Any) -> None: ...

    @property
    def paused(self) -> bool: ...

    def track(self, body: Mapping[str, Any]) -> None: ...

    def wake(self, uid: str) -> None: ...

    def forget(self, uid: str, namespace: str, name: str) -> None: ...

    async def close(self) -> None: ...


class FlagRecords:
    """flag_record() for both flag indexes, computed once per version of a flag: kopf
    calls each index with the same body in turn, and the two then share one record."""

    def __init__(self) -> None:
        self._last: tuple[tuple[str, str], FlagRecord] | None = None

    def of(self, body: Mapping[str, Any]) -> FlagRecord:
        meta = body.get("metadata") or {}
        version = (str(meta.get("uid", "")), str(meta.get("resourceVersion", "")))
        if self._last is not None and self._last[0] == version and version[1]:
            return self._last[1]
        record = flag_record(body)
        self._last = (version, record)
        return record


def flag_record(body: Mapping[str, Any]) -> FlagRecord:
    """What the index keeps of a FeatureFlag. Never raises: kopf holds every handler back
    until each object is indexed, so one unreadable object must not fail its index call."""
    flag = FeatureFlag.from_object(body)
    raw_status = body.get("status")
    return FlagRecord(
        name=flag.name,
        uid=flag.uid,
        generation=flag.generation,
        input=FlagInput.from_flag(flag),
        # The publisher compares its own writes with what is stored, as stored.
        status=dict(raw_status) if isinstance(raw_status, Mapping) else {},
        integration=flag.spec.integration,
    )


def rollout_control(body: Mapping[str, Any]) -> RolloutControl | None:
    """The Rollout's hold on its flag, or None while it holds no stage (or is unreadable)."""
    return RolloutControl.from_rollout(Rollout.from_object(body))


def rollout_claim(body: Mapping[str, Any]) -> RolloutClaim:
    return claim_from_object(body)


def handback_warning(control: RolloutControl, flag: FlagRecord) -> str | None:
    """What to say when deleting the Rollout `control` hands `flag` back to its spec, or
    None when who sees the feature does not change."""
    if flag.input.key is None:
        return None
    held, _ = effective_state(flag.input, control)
    handed_back, _ = effective_state(flag.input, None)
    if (held.enabled, held.rollout_percent, held.allowed_cohorts) == (
        handed_back.enabled,
        handed_back.rollout_percent,
        handed_back.allowed_cohorts,
    ):
        return None
    return (
        f"Rollout {control.name} was deleted at stage {control.stage.value}; the flag is back"
        f" to its spec: enabled={handed_back.enabled}, rolloutPercent="
        f"{handed_back.rollout_percent} (was enabled={held.enabled}, rolloutPercent="
        f"{held.rollout_percent}). Use `kubectl flagops complete` to keep a stage."
    )


def _seen_change(memory: dict[str, Any], type_: str | None, uid: str, value: Any) -> bool:
    """Whether object `uid` went or shows another `value` than last time; remembers it."""
    changed = type_ == "DELETED" or uid not in memory or memory[uid] != value
    if type_ == "DELETED":
        memory.pop(uid, None)
    else:
        memory[uid] = value
    return changed


class OperatorEvents:
    """The state event filtering needs (what each object last looked like), and the
    calls each event makes into the publisher and the reconciler."""

    def __init__(
        self,
        kube: EventPoster,
        publisher: Publisher,
        reconciler: Reconciler,
        configmap_name: str,
    ) -> None:
        self._kube = kube
        self._publisher = publisher
        self._reconciler = reconciler
        self.configmap_name = configmap_name
        # Each FeatureFlag's last generation: our own status patches come back as events.
        self._generations: dict[str, Any] = {}
        # What each Rollout last held: most Rollout events are its own analysis writes,
        # which change nothing the flags publish, and must not keep the publisher busy.
        self._holds: dict[str, Any] = {}

    # --- indexes ------------------------------------------------------------------------

    def is_flags_configmap(self, name: str) -> bool:
        return name == self.configmap_name

    @staticmethod
    def configmap_text(body: Mapping[str, Any]) -> str | None:
        data = body.get("data")
        text = data.get(FLAGS_KEY) if isinstance(data, Mapping) else None
        return text if isinstance(text, str) else None

    def bind(self, indexes: Mapping[str, Any]) -> None:
        """Hand kopf's current indexes to the publisher and the reconciler."""
        self._publisher.bind(indexes[FLAG_INDEX], indexes[ROLLOUT_INDEX], indexes[CONFIGMAP_INDEX])
        self._reconciler.bind(indexes[FLAG_BY_NAME_INDEX], indexes[CLAIM_INDEX])
        self._publisher.sharing.bind(indexes[COPY_INDEX])

    def publish(self, namespace: str | None, indexes: Mapping[str, Any]) -> None:
        if namespace is None:
            return
        self.bind(indexes)
        self._publisher.request(namespace)

    # --- filters ------------------------------------------------------------------------

    def flag_needs_publish(self, type_: str | None, uid: str, generation: Any) -> bool:
        """Only the spec (generation) and the flag's existence change what is published."""
        return _seen_change(self._generations, type_, uid, generation)

    def rollout_needs_publish(
        self, type_: str | None, uid: str, hold: RolloutControl | None
    ) -> bool:
        """Only a change of what the Rollout holds (or its existence) changes the flags."""
        return _seen_change(self._holds, type_, uid, hold)

    def configmap_needs_publish(
        self, type_: str | None, namespace: str | None, text: str | None
    ) -> bool:
        """A deleted or hand-edited ConfigMap is restored by the next flush."""
        return namespace is not None and (
            type_ == "DELETED" or not self._publisher.wrote(namespace, text)
        )

    # --- events -------------------------------------------------------------------------

    def flag_changed(
        self,
        type_: str | None,
        namespace: str | None,
        uid: str,
        generation: Any,
        indexes: Mapping[str, Any],
    ) -> None:
        if self.flag_needs_publish(type_, uid, generation):
            self.publish(namespace, indexes)

    async def rollout_changed(
        self,
        type_: str | None,
        namespace: str | None,
        body: Mapping[str, Any],
        indexes: Mapping[str, Any],
    ) -> None:
        self.bind(indexes)
        meta = body.get("metadata") or {}
        uid, name = str(meta.get("uid", "")), str(meta.get("name", ""))
        hold = rollout_control(body)
        if self.rollout_needs_publish(type_, uid, hold):
            self.publish(namespace, indexes)
        if type_ == "DELETED" and namespace is not None:
            self._reconciler.forget(uid, namespace, name)
            if not self._reconciler.paused:  # a standby's active peer says it
                await self.warn_on_handback(namespace, hold, indexes[FLAG_INDEX])
        elif namespace is not None:
            self._reconciler.track(body)

    async def warn_on_handback(
        self,
        namespace: str,
        control: RolloutControl | None,
        flags: Mapping[str, Iterable[FlagRecord]],
    ) -> None:
        """Deleting a Rollout hands its flag back to the spec: say so when exposure changes."""
        if control is None:
            return
        flag = next((f for f in flags.get(namespace, ()) if f.name == control.flag_name), None)
        if flag is None:
            return
        message = handback_warning(control, flag)
        if message is not None:
            await self._kube.post_event(
                flag.involved(namespace), "Warning", "RolloutDeleted", message
            )

    def probe_job_changed(self, meta: Mapping[str, Any]) -> None:
        """A probe Job finishing wakes its Rollout at once."""
        for owner in meta.get("ownerReferences") or []:
            if owner.get("kind") == "Rollout":
                self._reconciler.wake(owner["uid"])

    def configmap_changed(
        self,
        type_: str | None,
        namespace: str | None,
        body: Mapping[str, Any],
        indexes: Mapping[str, Any],
    ) -> None:
        if self.configmap_needs_publish(type_, namespace, self.configmap_text(body)):
            self.publish(namespace, indexes)

    async def close(self) -> None:
        await self._reconciler.close()
        await self._publisher.close()
