"""Confines an operator's kopf handlers to its shard's namespaces.

Every resource handler (indexes, event handlers, the Rollout daemon) gets a `when=`
filter, so an object of another shard is dropped before any handler runs, is in no
index, and gets no daemon. The filter is added to the registry once everything is
registered: the handlers themselves stay unaware of sharding.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, TypeVar

import kopf
from kopf._core.intents.handlers import ResourceHandler
from kubernetes.client.exceptions import ApiException

from flagops.api.resources import GROUP, VERSION
from flagops.controller.kube import Kube
from flagops.controller.shard import Shard
from flagops.publishing.sharing import SHARED_FROM_LABEL

logger = logging.getLogger(__name__)

WhenFn = Callable[..., bool]
HandlerT = TypeVar("HandlerT", bound=ResourceHandler)


def home_of(namespace: str | None, labels: Mapping[str, str] | None) -> str | None:
    """The namespace whose shard handles an object: a shared copy belongs to its owner's
    publishing, everything else to its own namespace; None for cluster-scoped objects
    (Namespaces), which every shard sees and answers for its own namespaces only."""
    owner = (labels or {}).get(SHARED_FROM_LABEL)
    return owner or namespace


def _within(shard: Shard, when: WhenFn | None) -> WhenFn:
    def owned(
        namespace: str | None = None, labels: Mapping[str, str] | None = None, **kwargs: Any
    ) -> bool:
        home = home_of(namespace, labels)
        if home is not None and not shard.owns(home):
            return False
        return when is None or bool(when(namespace=namespace, labels=labels, **kwargs))

    return owned


def _filter(handlers: list[HandlerT], shard: Shard) -> None:
    handlers[:] = [dataclasses.replace(h, when=_within(shard, h.when)) for h in handlers]


def restrict(registry: kopf.OperatorRegistry, shard: Shard, kube: Kube) -> None:
    """Filter every resource handler of `registry` to `shard` (none for one shard), and
    release Rollouts from the finalizers of shards that no longer run."""
    if shard.sharded:
        _confine(registry, shard)

    @kopf.on.event(
        GROUP,
        VERSION,
        "rollouts",
        id="shard_finalizers",
        when=_within(shard, None),
        registry=registry,
    )
    async def drop_stale_finalizers(
        namespace: str | None, name: str, meta: kopf.Meta, **_: Any
    ) -> None:
        # After n shrinks, the finalizer of a shard that no longer runs would hold a
        # deleted Rollout forever: its namespace's new shard lets it go.
        finalizers = list(meta.get("finalizers") or [])
        for stale in shard.stale_finalizers(finalizers):
            if namespace is not None:
                await _remove_finalizer(kube, namespace, name, finalizers, stale)


def _confine(registry: kopf.OperatorRegistry, shard: Shard) -> None:
    # kopf's decorators fill these per-kind registries; there is no public way to add
    # a filter to handlers already registered.
    _filter(registry._indexing._handlers, shard)
    _filter(registry._watching._handlers, shard)
    _filter(registry._spawning._handlers, shard)
    _filter(registry._changing._handlers, shard)
    _filter(registry._webhooks._handlers, shard)


async def _remove_finalizer(
    kube: Kube, namespace: str, name: str, finalizers: list[str], stale: str
) -> None:
    index = finalizers.index(stale)
    # The test makes the removal exact: a list changed meanwhile is left for its next event.
    body = [
        {"op": "test", "path": f"/metadata/finalizers/{index}", "value": stale},
        {"op": "remove", "path": f"/metadata/finalizers/{index}"},
    ]
    call = partial(
        kube.custom.patch_namespaced_custom_object,
        GROUP,
        VERSION,
        namespace,
        "rollouts",
        name,
        body,
        _content_type="application/json-patch+json",
    )
    try:
        await asyncio.to_thread(call)
    except ApiException as exc:
        if exc.status not in (404, 409, 422):
            raise
        return
    logger.info("removed finalizer %s of a shard that no longer runs from %s", stale, name)
