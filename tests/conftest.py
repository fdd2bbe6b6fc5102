"""Shared fixtures: the real local control plane, namespaces, Prometheus, the kubelet stand-in.

Fixtures start nothing until a test asks for them, so unit tests never start a
control plane. Missing binaries fail the requesting test loudly (no skip).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from flagops_devtools.testing.controlplane import ControlPlane
from flagops_devtools.testing.crds import apply_crds
from flagops_devtools.testing.kubelet_standin import ProbeKubeletStandIn
from flagops_devtools.testing.operator import OperatorProcess
from flagops_devtools.testing.prometheus import PrometheusServer
from flagops_devtools.testing.relay import RelayProcess
from flagops_devtools.testing.wait import wait_for

PrometheusFactory = Callable[..., PrometheusServer]
OperatorFactory = Callable[..., OperatorProcess]
RelayFactory = Callable[..., RelayProcess]


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane]:
    plane = ControlPlane(controller_manager=True)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kube_api(control_plane: ControlPlane) -> Iterator[Any]:
    """An admin kubernetes.client.ApiClient shared by the session (do not close it)."""
    api = control_plane.api_client()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def namespace(control_plane: ControlPlane) -> Iterator[str]:
    """A fresh namespace; deletion is started afterwards but not awaited."""
    name = control_plane.create_namespace()
    yield name
    control_plane.delete_namespace(name)


@pytest.fixture
def prometheus_server() -> Iterator[PrometheusFactory]:
    """prometheus_server(targets, scrape_interval="1s", port=None, **kw) -> a started server."""
    started: list[PrometheusServer] = []

    def start(
        targets: list[str], scrape_interval: str = "1s", port: int | None = None, **kwargs: Any
    ) -> PrometheusServer:
        server = PrometheusServer(targets, scrape_interval, port, **kwargs)
        started.append(server)
        server.start()
        return server

    yield start
    for server in started:
        server.close()


@pytest.fixture
def kubelet_standin(control_plane: ControlPlane, kube_api: Any) -> Iterator[ProbeKubeletStandIn]:
    """Runs probe pods (label flagops.dev/probe) of every namespace locally."""
    standin = ProbeKubeletStandIn(api_client=kube_api)
    standin.start()
    try:
        wait_for(standin.ready.is_set, timeout=30, message="kubelet stand-in did not list pods")
        yield standin
    finally:
        standin.stop()


@pytest.fixture(scope="session")
def flagops_crds(control_plane: ControlPlane) -> ControlPlane:
    """The committed CRDs (crds/, with kopf's peering CRDs), applied as a user would."""
    return apply_crds(control_plane, Path(__file__).resolve().parents[1] / "crds")


@pytest.fixture
def operator_factory(flagops_crds: ControlPlane) -> Iterator[OperatorFactory]:
    """operator_factory([namespace], **OperatorProcess options) -> a started `flagops run`."""
    started: list[OperatorProcess] = []

    def start(namespaces: list[str], **kwargs: Any) -> OperatorProcess:
        operator = OperatorProcess(flagops_crds.kubeconfig, namespaces, **kwargs)
        started.append(operator)
        return operator.start()

    yield start
    for operator in started:
        operator.stop()


@pytest.fixture
def custom(kube_api: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(kube_api)


@pytest.fixture
def core(kube_api: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(kube_api)


@pytest.fixture
def relay_factory(control_plane: ControlPlane) -> Iterator[RelayFactory]:
    """relay_factory([namespace], tokens=[...], **RelayProcess options) -> a ready relay."""
    started: list[RelayProcess] = []

    def start(namespaces: list[str], **kwargs: Any) -> RelayProcess:
        relay = RelayProcess(control_plane.kubeconfig, namespaces, **kwargs)
        started.append(relay)
        return relay.start()

    yield start
    for relay in started:
        relay.stop()
