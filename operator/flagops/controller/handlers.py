"""kopf handlers: thin wiring from watch events to the publisher and the rollout reconciler.

Handlers are registered on a registry built per run, so the settings and clients
they close over are explicit (and tests can build several operators side by side).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf

from flagops.api.actions import ACTION_ANNOTATION
from flagops.api.featureflag import FeatureFlag
from flagops.api.resources import GROUP, VERSION
from flagops.api.rollout import Rollout
from flagops.api.validation import RolloutClaim, claim_from_object
from flagops.controller import sharing_handlers
from flagops.controller.kube import Kube
from flagops.controller.publisher import FLAGS_KEY, MANAGED_BY, FlagPublisher
from flagops.controller.rollouts import RolloutReconciler
from flagops.publishing.record import FlagRecord
from flagops.publishing.resolve import FlagInput, RolloutControl, effective_state
from flagops.rollouts.probe_job import ROLLOUT_LABEL

logger = logging.getLogger(__name__)


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


def rollout_claim(body: kopf.Body) -> RolloutClaim:
    return claim_from_object(body)


def register(
    registry: kopf.OperatorRegistry,
    kube: Kube,
    publisher: FlagPublisher,
    reconciler: RolloutReconciler,
    configmap_name: str,
) -> None:
    def is_flags_configmap(name: str, **_: Any) -> bool:
        return name == configmap_name

    @kopf.index(GROUP, VERSION, "featureflags", id="flag_index", registry=registry)
    def flag_index(
        namespace: str | None, body: kopf.Body, **_: Any
    ) -> dict[str | None, FlagRecord]:
        return {namespace: flag_record(body)}

    @kopf.index(GROUP, VERSION, "rollouts", id="rollout_index", registry=registry)
    def rollout_index(
        namespace: str | None, body: kopf.Body, **_: Any
    ) -> dict[str | None, RolloutControl | None]:
        return {namespace: rollout_control(body)}

    @kopf.index(GROUP, VERSION, "rollouts", id="claim_index", registry=registry)
    def claim_index(
        namespace: str | None, body: kopf.Body, **_: Any
    ) -> dict[str | None, RolloutClaim]:
        return {namespace: rollout_claim(body)}

    @kopf.index(
        "",
        "v1",
        "configmaps",
        id="configmap_index",
        labels=MANAGED_BY,
        when=is_flags_configmap,
        registry=registry,
    )
    def configmap_index(
        namespace: str | None, body: kopf.Body, **_: Any
    ) -> dict[str | None, str | None]:
        return {namespace: (body.get("data") or {}).get("flags.json")}

    def bind(**kwargs: Any) -> None:
        publisher.bind(kwargs["flag_index"], kwargs["rollout_index"], kwargs["configmap_index"])
        reconciler.bind(kwargs["flag_index"], kwargs["claim_index"])
        publisher.sharing.bind(kwargs[sharing_handlers.COPY_INDEX])

    def publish(namespace: str | None, **kwargs: Any) -> None:
        if namespace is None:
            return
        bind(**kwargs)
        publisher.request(namespace)

    sharing_handlers.register(registry, publisher, configmap_name, publish)

    @kopf.on.event(GROUP, VERSION, "featureflags", registry=registry)
    async def flag_changed(
        type: str | None, namespace: str | None, uid: str, meta: kopf.Meta, **kwargs: Any
    ) -> None:
        # Only the spec (generation) and the flag's existence change what is published;
        # our own status patches come back here too and need no flush.
        generation = meta.get("generation")
        if type == "DELETED" or generations.get(uid) != generation:
            publish(namespace, **kwargs)
        if type == "DELETED":
            generations.pop(uid, None)
        else:
            generations[uid] = generation

    generations: dict[str, Any] = {}

    # What each Rollout last held: most Rollout events are its own analysis writes, which
    # change nothing the flags publish, and must not keep the publisher busy.
    holds: dict[str, RolloutControl | None] = {}

    @kopf.on.event(GROUP, VERSION, "rollouts", registry=registry)
    async def rollout_changed(
        type: str | None,
        namespace: str | None,
        name: str,
        uid: str,
        body: kopf.Body,
        meta: kopf.Meta,
        **kwargs: Any,
    ) -> None:
        bind(**kwargs)
        hold = rollout_control(body)
        if type == "DELETED" or uid not in holds or holds[uid] != hold:
            publish(namespace, **kwargs)
        holds[uid] = hold
        if type == "DELETED" and namespace is not None:
            holds.pop(uid, None)
            reconciler.forget(uid, namespace, name)
            await warn_on_handback(namespace, body, kwargs["flag_index"])
        else:
            reconciler.notice(
                uid, meta.get("generation", 0), meta.annotations.get(ACTION_ANNOTATION)
            )

    async def warn_on_handback(namespace: str, body: kopf.Body, flags: Any) -> None:
        """Deleting a Rollout hands its flag back to the spec: say so when exposure changes."""
        control = rollout_control(body)
        if control is None:
            return
        flag = next((f for f in flags.get(namespace, ()) if f.name == control.flag_name), None)
        if flag is None or flag.input.key is None:
            return
        held, _ = effective_state(flag.input, control)
        handed_back, _ = effective_state(flag.input, None)
        if (held.enabled, held.rollout_percent, held.allowed_cohorts) == (
            handed_back.enabled,
            handed_back.rollout_percent,
            handed_back.allowed_cohorts,
        ):
            return
        await kube.post_event(
            flag.involved(namespace),
            "Warning",
            "RolloutDeleted",
            f"Rollout {control.name} was deleted at stage {control.stage.value}; the flag is back"
            f" to its spec: enabled={handed_back.enabled}, rolloutPercent="
            f"{handed_back.rollout_percent} (was enabled={held.enabled}, rolloutPercent="
            f"{held.rollout_percent}). Use `kubectl flagops complete` to keep a stage.",
        )

    # A daemon per Rollout runs its analysis loop; kopf stops it on deletion and
    # pauses it while another replica is active (peering).
    @kopf.daemon(
        GROUP, VERSION, "rollouts", id="rollout", cancellation_timeout=10, registry=registry
    )
    async def rollout_loop(
        namespace: str | None, name: str, uid: str, stopped: kopf.DaemonStopped, **kwargs: Any
    ) -> None:
        if namespace is None:
            return
        bind(**kwargs)
        await reconciler.run(namespace, name, uid, stopped)

    # A probe Job finishing wakes its Rollout at once.
    @kopf.on.event("batch", "v1", "jobs", labels={ROLLOUT_LABEL: kopf.PRESENT}, registry=registry)
    async def probe_job_changed(meta: kopf.Meta, **_: Any) -> None:
        for owner in meta.get("ownerReferences") or []:
            if owner.get("kind") == "Rollout":
                reconciler.wake(owner["uid"])

    # A deleted or hand-edited ConfigMap is noticed here and restored by the next flush.
    @kopf.on.event(
        "", "v1", "configmaps", labels=MANAGED_BY, when=is_flags_configmap, registry=registry
    )
    async def configmap_changed(
        type: str | None, namespace: str | None, body: kopf.Body, **kwargs: Any
    ) -> None:
        text = (body.get("data") or {}).get(FLAGS_KEY)
        if namespace is not None and (type == "DELETED" or not publisher.wrote(namespace, text)):
            publish(namespace, **kwargs)

    @kopf.on.cleanup(registry=registry)
    async def stop_publishing(**_: Any) -> None:
        await publisher.close()
