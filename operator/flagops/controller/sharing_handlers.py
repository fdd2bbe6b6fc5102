"""kopf wiring for sharing: the index of copies, their events, namespaces appearing."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf

from flagops.controller.publisher import MANAGED_BY, FlagPublisher
from flagops.controller.sharing import CopyRecord, copy_record
from flagops.publishing.sharing import SHARED_FROM_LABEL

COPY_INDEX = "copy_index"


def register(
    registry: kopf.OperatorRegistry,
    publisher: FlagPublisher,
    configmap_name: str,
    publish_namespace: Callable[..., None],
) -> None:
    """`publish_namespace(namespace, **kwargs)` binds the indexes and requests a flush."""
    sharing = publisher.sharing

    def is_copy(body: kopf.Body, **_: Any) -> bool:
        return copy_record(configmap_name, body) is not None

    @kopf.index(
        "",
        "v1",
        "configmaps",
        id=COPY_INDEX,
        labels={**MANAGED_BY, SHARED_FROM_LABEL: kopf.PRESENT},
        when=is_copy,
        registry=registry,
    )
    def copy_index(body: kopf.Body, **_: Any) -> dict[str, CopyRecord]:
        found = copy_record(configmap_name, body)
        return {} if found is None else {found[0]: found[1]}

    def publish(owner: str, **kwargs: Any) -> None:
        # A copy naming a namespace the operator does not watch is not ours to answer for.
        if not sharing.watched(owner):
            return
        publish_namespace(owner, **kwargs)

    # A deleted or hand-edited copy is rewritten (or removed) by the owner's next flush.
    @kopf.on.event(
        "",
        "v1",
        "configmaps",
        labels={**MANAGED_BY, SHARED_FROM_LABEL: kopf.PRESENT},
        when=is_copy,
        registry=registry,
    )
    async def copy_changed(
        type: str | None, namespace: str | None, body: kopf.Body, **kwargs: Any
    ) -> None:
        found = copy_record(configmap_name, body)
        if found is None or namespace is None:
            return
        owner, record = found
        if type == "DELETED" or not sharing.wrote(owner, namespace, record.text):
            publish(owner, **kwargs)

    if not sharing.clusterwide:
        return  # only watched namespaces can hold copies, and they exist already

    # A namespace appearing gets the copies waiting for it; one disappearing updates the
    # owners' `Shared` conditions.
    @kopf.on.event("", "v1", "namespaces", registry=registry)
    async def namespace_changed(type: str | None, name: str, **kwargs: Any) -> None:
        if type == "DELETED":
            for owner in sorted(sharing.owners_with_copies_in(name)):
                publish(owner, **kwargs)
        else:
            sharing.bind(kwargs[COPY_INDEX])
            sharing.namespace_appeared(name)
