"""While the API server is down the relay serves its last good state, and says so."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client
from relay_helpers import context, http, publish, token_entry

from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.relay import RelayProcess
from flagops_devtools.testing.wait import wait_for

pytestmark = pytest.mark.integration

TOKEN = "outage-token-ffffffffffffffff"


@pytest.fixture
def own_plane() -> Iterator[ControlPlane]:
    """A control plane of this test's own: stopping its API server disturbs no other test."""
    with ControlPlane(controller_manager=False) as plane:
        yield plane


def _watch_up(relay: RelayProcess) -> float:
    for line in relay.metrics().splitlines():
        if line.startswith("flagops_relay_watch_up "):
            return float(line.split()[1])
    raise AssertionError("no flagops_relay_watch_up")


def test_serves_last_good_state_while_the_apiserver_is_down(own_plane: ControlPlane) -> None:
    api = own_plane.api_client()
    core = client.CoreV1Api(api)
    namespace = own_plane.create_namespace()
    revision = publish(core, namespace, {"a": {"enabled": True, "rolloutPercent": 100}})
    relay = RelayProcess(
        own_plane.kubeconfig, [namespace], tokens=[token_entry(TOKEN, [namespace])]
    )
    bulk = relay.url + "/ofrep/v1/evaluate/flags"
    # The harness keeps the API server as a restartable child; this test is the one that needs it.
    apiserver = own_plane._processes["kube-apiserver"]
    with relay:
        assert relay.health() == (
            200,
            {"ready": True, "synced": True, "watch": "connected", "stale": False, "namespaces": 1},
        )
        assert _watch_up(relay) == 1

        apiserver.stop()

        def disconnected() -> tuple[int, dict[str, Any]] | None:
            health = relay.health()
            return health if health[1]["watch"] == "disconnected" else None

        status, body = wait_for(disconnected, timeout=30, message="relay noticed the outage")
        assert status == 200 and body["stale"] is True and body["ready"] is True
        assert body["disconnectedSeconds"] >= 0
        assert _watch_up(relay) == 0
        reply = http(bulk, TOKEN, context("u"))
        assert reply.status == 200
        assert reply.json()["metadata"]["revision"] == revision
        assert reply.json()["flags"][0]["value"] is True
        assert "flagops_relay_watch_disconnects_total 1.0" in relay.metrics()

        apiserver.start()
        wait_for(
            lambda: relay.health()[1]["watch"] == "connected",
            timeout=90,
            message="relay reconnected",
        )
        assert _watch_up(relay) == 1
        newer = wait_for(
            lambda: publish(core, namespace, {"a": {"enabled": False, "rolloutPercent": 0}}),
            timeout=30,
            message="API server accepts writes again",
        )
        wait_for(
            lambda: http(bulk, TOKEN, context("u")).json()["metadata"]["revision"] == newer,
            timeout=15,
            message="relay follows changes again",
        )
    api.close()
