"""Fixtures for publishing tests: the CRDs, and the operator as a real child process."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
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
def operator(operator_factory: OperatorFactory, namespace: str) -> OperatorProcess:
    return operator_factory([namespace])


@pytest.fixture
def core(kube_api: Any) -> client.CoreV1Api:
    return client.CoreV1Api(kube_api)


@pytest.fixture
def custom(kube_api: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_api)
