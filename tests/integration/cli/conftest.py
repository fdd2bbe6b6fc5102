"""Fixtures for the kubectl-flagops tests: the operator, clients, the stand-in responder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_helpers import ActionResponderStandIn, Responder
from kubernetes import client

from flagops.testing.controlplane import ControlPlane
from flagops.testing.operator import OperatorProcess

OperatorFactory = Callable[..., OperatorProcess]


@pytest.fixture
def operator_factory(flagops_crds: ControlPlane) -> Iterator[OperatorFactory]:
    started: list[OperatorProcess] = []

    def start(namespaces: list[str], **kwargs: Any) -> OperatorProcess:
        operator = OperatorProcess(flagops_crds.kubeconfig, namespaces, **kwargs)
        started.append(operator)
        return operator.start()

    yield start
    for operator in started:
        operator.stop()


@pytest.fixture
def custom(kube_api: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)


@pytest.fixture
def core(kube_api: Any) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


@pytest.fixture
def kubeconfig(flagops_crds: ControlPlane) -> str:
    return str(flagops_crds.kubeconfig)


@pytest.fixture
def responder_factory(
    kube_api: Any, namespace: str
) -> Iterator[Callable[..., ActionResponderStandIn]]:
    started: list[ActionResponderStandIn] = []

    def start(respond: Responder | None = None) -> ActionResponderStandIn:
        standin = ActionResponderStandIn(kube_api, namespace, respond).start()
        started.append(standin)
        return standin

    yield start
    for standin in started:
        standin.stop()
