"""kopf handlers: registration only; each handler is one call into `OperatorEvents`.

Handlers are registered on a registry built per run, so the settings and clients
they close over are explicit (and tests can build several operators side by side).
What each event does, and which events are filtered out, is controller/events.py.
"""

from __future__ import annotations

from typing import Any

import kopf

from flagops.api.resources import GROUP, VERSION
from flagops.api.validation import RolloutClaim
from flagops.controller import sharing_handlers
from flagops.controller.events import (
    CLAIM_INDEX,
    CONFIGMAP_INDEX,
    FLAG_BY_NAME_INDEX,
    FLAG_INDEX,
    ROLLOUT_INDEX,
    FlagRecords,
    OperatorEvents,
    rollout_claim,
    rollout_control,
)
from flagops.controller.kube import Kube
from flagops.controller.publisher import MANAGED_BY, FlagPublisher
from flagops.controller.rollouts import RolloutReconciler
from flagops.publishing.record import FlagRecord
from flagops.publishing.resolve import RolloutControl
from flagops.rollouts.probe_job import ROLLOUT_LABEL


def register(
    registry: kopf.OperatorRegistry,
    kube: Kube,
    publisher: FlagPublisher,
    reconciler: RolloutReconciler,
    configmap_name: str,
) -> None:
    on = OperatorEvents(kube, publisher, reconciler, configmap_name)

    def is_flags_configmap(name: str, **_: Any) -> bool:
        return on.is_flags_configmap(name)

    records = FlagRecords()

    # Index handlers are coroutines though they never wait: kopf runs a plain function in
    # its thread pool, one thread hop per object and index (a cold takeover of 3,000
    # Rollouts took 25.9 s with the hops, 17.9 s without).

    @kopf.index(GROUP, VERSION, "featureflags", id=FLAG_INDEX, registry=registry)
    async def flag_index(
        namespace: str | None, body: kopf.Body, **_: Any
    ) -> dict[str | None, FlagRecord]:
        return {namespace: records.of(body)}

    @kopf.index(GROUP, VERSION, "featureflags", id=FLAG_BY_NAME_INDEX, registry=registry)
    async def flag_by_name_index(
        namespace: str | None, name: str, body: kopf.Body, **_: Any
    ) -> dict[tuple[str | None, str], FlagRecord]:
        return {(namespace, name): records.of(body)}

    @kopf.index(GROUP, VERSION, "rollouts", id=ROLLOUT_INDEX, registry=registry)
    async def rollout_index(
        namespace: str | None, body: kopf.Body, **_: Any
    ) -> dict[str | None, RolloutControl | None]:
        return {namespace: rollout_control(body)}

    @kopf.index(GROUP, VERSION, "rollouts", id=CLAIM_INDEX, registry=registry)
    async def claim_index(
        namespace: str | None, body: kopf.Body, **_: Any
    ) -> dict[tuple[str | None, str], RolloutClaim]:
        claim = rollout_claim(body)
        return {(namespace, claim.flag_name): claim}

    @kopf.index(
        "",
        "v1",
        "configmaps",
        id=CONFIGMAP_INDEX,
        labels=MANAGED_BY,
        when=is_flags_configmap,
        registry=registry,
    )
    async def configmap_index(
        namespace: str | None, body: kopf.Body, **_: Any
    ) -> dict[str | None, str | None]:
        return {namespace: on.configmap_text(body)}

    def publish(namespace: str | None, **kwargs: Any) -> None:
        on.publish(namespace, kwargs)

    sharing_handlers.register(registry, publisher, configmap_name, publish)

    @kopf.on.event(GROUP, VERSION, "featureflags", registry=registry)
    async def flag_changed(
        type: str | None, namespace: str | None, uid: str, meta: kopf.Meta, **kwargs: Any
    ) -> None:
        on.flag_changed(type, namespace, uid, meta.get("generation"), kwargs)

    @kopf.on.event(GROUP, VERSION, "rollouts", registry=registry)
    async def rollout_changed(
        type: str | None, namespace: str | None, body: kopf.Body, **kwargs: Any
    ) -> None:
        await on.rollout_changed(type, namespace, body, kwargs)

    @kopf.on.event("batch", "v1", "jobs", labels={ROLLOUT_LABEL: kopf.PRESENT}, registry=registry)
    async def probe_job_changed(meta: kopf.Meta, **_: Any) -> None:
        on.probe_job_changed(meta)

    @kopf.on.event(
        "", "v1", "configmaps", labels=MANAGED_BY, when=is_flags_configmap, registry=registry
    )
    async def configmap_changed(
        type: str | None, namespace: str | None, body: kopf.Body, **kwargs: Any
    ) -> None:
        on.configmap_changed(type, namespace, body, kwargs)

    @kopf.on.cleanup(registry=registry)
    async def stop_publishing(**_: Any) -> None:
        await on.close()
