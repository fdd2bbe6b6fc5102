"""kopf wiring for sharing: the index of copies, their events, namespaces appearing.

Registration only; what each event does is `SharingEvents` (controller/sharing_events.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import kopf

from flagops.controller.publisher import MANAGED_BY, FlagPublisher
from flagops.controller.sharing import CopyRecord
from flagops.controller.sharing_events import COPY_INDEX, SharingEvents
from flagops.publishing.sharing import SHARED_FROM_LABEL

__all__ = ["COPY_INDEX", "register"]


def register(
    registry: kopf.OperatorRegistry,
    publisher: FlagPublisher,
    configmap_name: str,
    publish_namespace: Callable[..., None],
) -> None:
    """`publish_namespace(namespace, **kwargs)` binds the indexes and requests a flush."""
    on = SharingEvents(publisher.sharing, configmap_name, publish_namespace)

    def is_copy(body: kopf.Body, **_: Any) -> bool:
        return on.is_copy(body)

    @kopf.index(
        "",
        "v1",
        "configmaps",
        id=COPY_INDEX,
        labels={**MANAGED_BY, SHARED_FROM_LABEL: kopf.PRESENT},
        when=is_copy,
        registry=registry,
    )
    # A coroutine, as in handlers.py: kopf runs plain functions in its thread pool.
    async def copy_index(body: kopf.Body, **_: Any) -> dict[str, CopyRecord]:
        return on.copy_index(body)

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
        on.copy_changed(type, namespace, body, kwargs)

    if not on.clusterwide:
        return  # only watched namespaces can hold copies, and they exist already

    @kopf.on.event("", "v1", "namespaces", registry=registry)
    async def namespace_changed(type: str | None, name: str, **kwargs: Any) -> None:
        on.namespace_changed(type, name, kwargs)
