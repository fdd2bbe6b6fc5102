"""Assembles and runs the operator: logging, metrics endpoint, clients, kopf."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
import prometheus_client

from flagops.controller import handlers, metrics
from flagops.controller.essence import LeanDiffBaseStorage
from flagops.controller.health import ApiserverHealth
from flagops.controller.kopf_pause import (
    keep_watching_while_paused,
    unwatch_kopf_pause,
    watch_kopf_pause,
)
from flagops.controller.kopf_toggles import quiet_toggle_sets
from flagops.controller.kube import CONNECTION_POOL, Kube, load_config
from flagops.controller.publisher import FlagPublisher
from flagops.controller.rollouts import RolloutReconciler
from flagops.controller.settings import Settings
from flagops.controller.shard_handlers import restrict
from flagops.controller.standby import Standby

IO_THREADS = CONNECTION_POOL

logger = logging.getLogger(__name__)


def configure_logging(settings: Settings) -> None:
    log_format = kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL
    kopf.configure(
        log_format=log_format, log_refkey="k8s", verbose=os.environ.get("FLAGOPS_DEBUG") == "1"
    )


def build_registry(settings: Settings, kube: Kube) -> tuple[kopf.OperatorRegistry, FlagPublisher]:
    registry = kopf.OperatorRegistry()
    publisher = FlagPublisher(kube, settings)
    reconciler = RolloutReconciler(kube, settings)
    handlers.register(registry, kube, publisher, reconciler, settings.configmap_name)
    # A standby watches and indexes like the active replica and acts on nothing.
    standby = Standby()
    standby.add(reconciler)
    standby.add(publisher)
    hooked = keep_watching_while_paused() and watch_kopf_pause(standby.follow)
    if not hooked and not settings.standalone:
        raise SystemExit(
            "this kopf version hides whether a replica is paused (controller/kopf_pause.py);"
            " run with --standalone or install the kopf version pinned by flagops"
        )
    restrict(registry, settings.shard, kube)

    # A custom registry does not get kopf's default login; use the same credentials
    # as the kubernetes client (in-cluster service account, else the kubeconfig).
    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    peering_lifetime = settings.peering_lifetime
    health = ApiserverHealth(kube, settings.apiserver_unhealthy_after)

    # /healthz: {"apiserver": {"status": "ok" | "degraded", ...}}, 500 once hopeless.
    @kopf.on.probe(id="apiserver", errors=kopf.ErrorsMode.PERMANENT, registry=registry)
    async def apiserver(**_: Any) -> dict[str, Any]:
        health.start()
        return health.report()

    @kopf.on.startup(registry=registry)
    async def watch_apiserver(**_: Any) -> None:
        health.start()

    @kopf.on.cleanup(registry=registry)
    async def stop_watching_apiserver(**_: Any) -> None:
        await health.stop()
        unwatch_kopf_pause(standby.follow)
        await standby.close()

    clusterwide = settings.clusterwide
    finalizer = settings.shard.finalizer

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # The operator posts its own, meaningful Events; kopf's per-handler log Events
        # would drown them.
        settings.posting.level = logging.WARNING
        # No handler needs a finalizer: kopf takes this one (put on Rollouts by versions
        # that ran a kopf daemon per Rollout) off each Rollout it sees. One per shard
        # (controller/shard.py); those of shards gone are swept by shard_handlers.py.
        settings.persistence.finalizer = finalizer
        settings.persistence.diffbase_storage = LeanDiffBaseStorage()
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        # Watching listed namespaces needs no cluster-wide discovery; with Roles only it
        # would be refused and retried for about a minute before kopf falls back.
        if not clusterwide:
            settings.scanning.disabled = True
        settings.peering.lifetime = peering_lifetime

    return registry, publisher


def peering_priority() -> int:
    configured = os.environ.get("FLAGOPS_PEERING_PRIORITY")
    if configured:
        return int(configured)
    return secrets.randbelow(1_000_000) + 1


async def run_operator(settings: Settings) -> None:
    configure_logging(settings)
    prometheus_client.start_http_server(settings.metrics_port, addr=settings.bind_address)
    metrics.SHARDS.labels(str(settings.shard.index)).set(settings.shard.count)
    # Kubernetes and Prometheus calls run in worker threads (blocking clients). asyncio's
    # default of cores + 4 (six here) queued 10,000 Rollouts' status writes and queries
    # behind each other; match the Kubernetes client's 32 pooled connections.
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="flagops-io")
    )
    # Before kopf builds its toggle sets: a takeover of N objects must not cost N x N.
    quiet_toggle_sets()
    kube = Kube(load_config())
    registry, _ = build_registry(settings, kube)
    if settings.shard.sharded:
        kube.api_client.user_agent = f"{settings.shard.manager}/python"
        logger.info(
            "serving shard %s: peering %s, finalizer %s",
            settings.shard,
            settings.shard.peering_name(settings.peering),
            settings.shard.finalizer,
        )
    await kopf.operator(
        registry=registry,
        clusterwide=settings.clusterwide,
        namespaces=list(settings.namespaces),
        standalone=settings.standalone,
        peering_name=None if settings.standalone else settings.shard.peering_name(settings.peering),
        # kopf pauses only lower-priority peers: replicas with equal priorities would all
        # act. A random priority per start makes exactly one replica active.
        priority=peering_priority(),
        liveness_endpoint=f"http://{settings.bind_address}:{settings.health_port}/healthz",
    )
