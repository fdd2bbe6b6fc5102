"""Fixtures for the kubectl-flagops tests: the operator, clients, the stand-in responder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cli_helpers import ActionResponderStandIn, Responder

from flagops_devtools.testing.controlplane import ControlPlane


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
