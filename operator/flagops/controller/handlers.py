"""kopf handlers: thin wiring from watch events to the publisher and the rollout reconciler.

Handlers are registered on a registry built per run, so the settings and clients
they close over are explicit (and tests can build several operators side by side).
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from flagops.api.stages import Stage
from flagops.controller.kube import GROUP, VERSION
from flagops.controller.publisher import MANAGED_BY, FlagPublisher, FlagRecord
from flagops.flags.resolve import FlagInput, RolloutControl

logger = logging.getLogger(__name__)


def flag_record(body: kopf.Body) -> FlagRecord:
    meta = body["metadata"]
    return FlagRecord(
        name=meta["name"],
        uid=meta["uid"],
        generation=meta.get("generation", 0),
        input=FlagInput.from_spec(meta["name"], meta["creationTimestamp"], body.get("spec", {})),
        status=dict(body.get("status") or {}),
    )


def rollout_control(body: kopf.Body) -> RolloutControl | None:
    """The Rollout's hold on its flag, or None while it holds no stage."""
    stage = (body.get("status") or {}).get("stage")
    spec = body.get("spec") or {}
    flag_name = (spec.get("flagRef") or {}).get("name")
    if not isinstance(stage, str) or stage not in Stage.__members__ or not flag_name:
        return None
    return RolloutControl(
        name=body["metadata"]["name"],
        flag_name=flag_name,
        stage=Stage(stage),
        internal_cohorts=tuple(spec.get("internalCohorts", ["internal"])),
        created=body["metadata"]["creationTimestamp"],
    )


def register(
    registry: kopf.OperatorRegistry, publisher: FlagPublisher, configmap_name: str
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

    def publish(namespace: str | None, **kwargs: Any) -> None:
        if namespace is None:
            return
        publisher.bind(kwargs["flag_index"], kwargs["rollout_index"], kwargs["configmap_index"])
        publisher.request(namespace)

    @kopf.on.event(GROUP, VERSION, "featureflags", registry=registry)
    async def flag_changed(namespace: str | None, **kwargs: Any) -> None:
        publish(namespace, **kwargs)

    @kopf.on.event(GROUP, VERSION, "rollouts", registry=registry)
    async def rollout_changed(namespace: str | None, **kwargs: Any) -> None:
        publish(namespace, **kwargs)

    # A deleted or hand-edited ConfigMap is noticed here and restored by the next flush.
    @kopf.on.event(
        "", "v1", "configmaps", labels=MANAGED_BY, when=is_flags_configmap, registry=registry
    )
    async def configmap_changed(namespace: str | None, **kwargs: Any) -> None:
        publish(namespace, **kwargs)

    @kopf.on.cleanup(registry=registry)
    async def stop_publishing(**_: Any) -> None:
        await publisher.close()
